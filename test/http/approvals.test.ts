// Approvals (SPEC §13.3) over HTTP with real plan processes, on both stores: the attempt waits, the
// requester and a viewer may not approve (403, nothing written), another operator may (approval_granted
// names the approver, then it runs), an admin-only plan, reject cancels (rejected), expiry cancels
// (approval_expired), approve of an attempt not waiting is a 409, and a retry of an approved attempt
// needs no new approval.
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/dialect.ts';
import { FIXTURES, fixturePlans, waitFor } from '../helpers/engine.ts';
import {
  AUTH_CONFIG,
  bearer,
  expectProblem,
  harness,
  json,
  snapshot,
  waitAttempt,
  waitState,
  type Harness,
} from './helpers.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const BOB = 'tok-bob-0123456789abcdef';
const bob = { authorization: `Bearer ${BOB}` };
const op = bearer('operator'); // "ci"
const admin = bearer('admin'); // "alice"
const viewer = bearer('viewer');

const plans = {
  ...fixturePlans(),
  appr: { deploy: p('ok.sh'), teardown: p('ok.sh'), approval: { deploy: true, teardown: true } },
  boss: { deploy: p('ok.sh'), teardown: p('ok.sh'), approval: { deploy: true, role: 'admin' } },
  brief: { deploy: p('ok.sh'), teardown: p('ok.sh'), approval: { deploy: true, expires: '300ms' } },
  flaky: {
    deploy: p('fail.sh'),
    teardown: p('ok.sh'),
    retry: { max: 1, backoff: '20ms' },
    approval: { deploy: true },
  },
};

describe.each(DIALECTS)('approvals on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    const tokens = [
      ...AUTH_CONFIG.auth.tokens,
      { name: 'bob', role: 'operator', token_sha256: createHash('sha256').update(BOB).digest('hex') },
    ];
    h = await harness({ auth: true, dialect, extra: { plans, auth: { tokens } } });
  });
  afterAll(async () => h?.close());

  async function deploy(name: string, plan: string, headers = op) {
    const c = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      headers,
      payload: { name, plan },
    });
    expect(c.statusCode, c.body).toBe(201);
    const res = await h.app.inject({ method: 'POST', url: `/v1/deployments/${name}/attempts`, headers });
    expect(res.statusCode, res.body).toBe(202);
    return json(res);
  }
  const answer = (
    id: string,
    what: 'approve' | 'reject',
    headers: Record<string, string>,
    reason = 'looked',
  ) => h.app.inject({ method: 'POST', url: `/v1/attempts/${id}/${what}`, headers, payload: { reason } });
  const eventsOf = async (id: string) =>
    json(await h.app.inject({ url: `/v1/events?limit=1000`, headers: admin })).items.filter(
      (e: { attempt_id: string }) => e.attempt_id === id,
    );

  it('waits; the requester and a viewer may not approve; another operator does, and it runs', async () => {
    const att = await deploy('a1', 'appr');
    expect(att.state).toBe('queued');
    const waiting = await waitAttempt(h.app, att.id, (a) => a.waiting?.length > 0, admin);
    expect(waiting.waiting).toEqual([
      { gate: 'approval', detail: { role: 'operator', requested_by: 'ci' }, since: expect.any(String) },
    ]);
    expect(json(await h.app.inject({ url: '/v1/deployments/a1', headers: op })).state).toBe('deploying');
    const metrics = (await h.app.inject({ url: '/metrics', headers: op })).body;
    expect(metrics).toContain('lifeline_attempts_waiting{gate="approval"} 1');

    const before = await snapshot(h.engine);
    const self = expectProblem(await answer(att.id, 'approve', op), 403, 'FORBIDDEN');
    expect(self.detail).toContain('"ci" requested this attempt and may not approve it');
    const view = expectProblem(await answer(att.id, 'approve', viewer), 403, 'FORBIDDEN');
    expect(view.detail).toContain('operator');
    expectProblem(await answer(att.id, 'reject', viewer), 403, 'FORBIDDEN');
    expectProblem(await answer(att.id, 'approve', bob, ''.padEnd(5000, 'x')), 422, 'VALIDATION');
    expect(await snapshot(h.engine)).toEqual(before);

    const ok = await answer(att.id, 'approve', bob, 'change ticket 42');
    expect(ok.statusCode, ok.body).toBe(200);
    await waitState(h.app, 'a1', 'ready', op);
    const evs = await eventsOf(att.id);
    const granted = evs.find((e: { type: string }) => e.type === 'approval_granted');
    expect(granted.data).toMatchObject({ approver: 'bob', reason: 'change ticket 42', requested_by: 'ci' });
    const opened = evs.find(
      (e: { type: string; data: { gate: string } }) => e.type === 'gate_opened' && e.data.gate === 'approval',
    );
    expect(opened.seq).toBeGreaterThan(granted.seq);
    expect(evs.find((e: { type: string }) => e.type === 'attempt_start').seq).toBeGreaterThan(opened.seq);

    // Not waiting any more: 409, nothing written.
    const after = await snapshot(h.engine);
    expectProblem(await answer(att.id, 'approve', admin), 409, 'ATTEMPT_TERMINAL');
    expectProblem(await answer(att.id, 'reject', admin), 409, 'ATTEMPT_TERMINAL');
    expect(await snapshot(h.engine)).toEqual(after);
  });

  it('a plan without approval: approve is a 409; an unknown attempt a 404', async () => {
    const att = await deploy('plain1', 'sleep');
    await waitAttempt(h.app, att.id, (a) => a.state === 'running', op);
    const before = await snapshot(h.engine);
    const p1 = expectProblem(await answer(att.id, 'approve', admin), 409, 'INVALID_TRANSITION');
    expect(p1.detail).toContain('not waiting for approval');
    expectProblem(await answer('att_nope', 'approve', admin), 404, 'NOT_FOUND');
    // The running plan may still log: the rows are compared, and no answer was recorded.
    const after = await snapshot(h.engine);
    expect([after.digest, after.attempts]).toEqual([before.digest, before.attempts]);
    expect((await eventsOf(att.id)).map((e: { type: string }) => e.type)).not.toContain('approval_granted');
    await h.app.inject({ method: 'POST', url: '/v1/deployments/plain1/cancel', headers: op });
    await waitState(h.app, 'plain1', 'failed', op).catch(() => waitState(h.app, 'plain1', 'pending', op));
  });

  it('role admin: an operator is refused (403 naming admin), an admin approves', async () => {
    const att = await deploy('b1', 'boss');
    await waitAttempt(h.app, att.id, (a) => a.waiting?.length > 0, op);
    const no = expectProblem(await answer(att.id, 'approve', bob), 403, 'FORBIDDEN');
    expect(no.detail).toContain('takes the admin role');
    expect((await answer(att.id, 'approve', admin)).statusCode).toBe(200);
    await waitState(h.app, 'b1', 'ready', op);
  });

  it('reject cancels it (reason rejected): the deployment goes back; the requester may withdraw too', async () => {
    const att = await deploy('r1', 'appr');
    await waitAttempt(h.app, att.id, (a) => a.waiting?.length > 0, op);
    const res = await answer(att.id, 'reject', bob, 'not today');
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res)).toMatchObject({ state: 'cancelled', reason: 'rejected' });
    expect(json(res).detail).toContain('rejected by bob: not today');
    expect(json(await h.app.inject({ url: '/v1/deployments/r1', headers: op })).state).toBe('pending');
    expect(await eventsOf(att.id)).not.toContainEqual(expect.objectContaining({ type: 'attempt_start' }));

    const own = await deploy('r2', 'appr');
    await waitAttempt(h.app, own.id, (a) => a.waiting?.length > 0, op);
    expect(json(await answer(own.id, 'reject', op))).toMatchObject({
      state: 'cancelled',
      reason: 'rejected',
    });
  });

  it('an approval not given within expires: cancelled (approval_expired)', async () => {
    const att = await deploy('e1', 'brief');
    const done = await waitAttempt(h.app, att.id, (a) => a.state === 'cancelled', op);
    expect(done.reason).toBe('approval_expired');
    expect(json(await h.app.inject({ url: '/v1/deployments/e1', headers: op })).state).toBe('pending');
  });

  it('the automatic retry of an approved attempt needs no new approval', async () => {
    const att = await deploy('f1', 'flaky');
    await waitAttempt(h.app, att.id, (a) => a.waiting?.length > 0, op);
    expect((await answer(att.id, 'approve', bob)).statusCode).toBe(200);
    const second = await waitFor(async () => {
      const list = json(await h.app.inject({ url: '/v1/deployments/f1/attempts', headers: op })).items;
      return list.find((a: { number: number; state: string }) => a.number === 2 && a.state === 'failed');
    }, 'the retry to fail');
    const evs = await eventsOf(second.id);
    expect(evs.filter((e: { type: string }) => e.type === 'gate_waiting')).toEqual([]);
    expect(evs.some((e: { type: string }) => e.type === 'attempt_start')).toBe(true);
    const row = await h.engine.store.db
      .selectFrom('attempts')
      .select('approved_by')
      .where('id', '=', second.id)
      .executeTakeFirst();
    expect(row?.approved_by).toBe('bob');
  });
});
