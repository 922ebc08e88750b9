// The freeze gate (SPEC §13.2) over HTTP with real plan processes, on both stores: new matching
// attempts wait (queue) or are refused (409 FROZEN, nothing written); running attempts are untouched;
// admin force passes; lifting opens the waiting attempts in queue order; a freeze that ends opens them
// by itself (mid-run); a retry due in a freeze waits for its end.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/dialect.ts';
import { FIXTURES, fixturePlans, waitFor } from '../helpers/engine.ts';
import {
  bearer,
  expectProblem,
  harness,
  json,
  quiesce,
  snapshot,
  waitAttempt,
  waitState,
  type Harness,
} from './helpers.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const op = bearer('operator');
const admin = bearer('admin');
const plans = {
  ...fixturePlans(),
  qa: { deploy: p('ok.sh'), teardown: p('ok.sh') },
  hard: { deploy: p('ok.sh'), teardown: p('ok.sh') },
  flaky: { deploy: p('fail.sh'), teardown: p('ok.sh'), retry: { max: 1, backoff: '20ms' } },
  timed: { deploy: p('ok.sh'), teardown: p('ok.sh') },
};

describe.each(DIALECTS)('the freeze gate on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ auth: true, dialect, extra: { plans } });
  });
  afterAll(async () => h?.close());

  const freeze = (body: Record<string, unknown>) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/freezes',
      headers: admin,
      payload: { until: new Date(Date.now() + 3_600_000).toISOString(), reason: 'test', ...body },
    });
  const lift = (name: string) =>
    h.app.inject({ method: 'DELETE', url: `/v1/freezes/${name}`, headers: admin });
  async function create(name: string, plan: string, labels: Record<string, string> = {}) {
    const c = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      headers: op,
      payload: { name, plan, labels },
    });
    expect(c.statusCode, c.body).toBe(201);
  }
  const start = (name: string, headers = op, body: Record<string, unknown> = {}) =>
    h.app.inject({ method: 'POST', url: `/v1/deployments/${name}/attempts`, headers, payload: body });
  const events = async () => json(await h.app.inject({ url: '/v1/events?limit=1000', headers: admin })).items;

  it('queue: matching attempts wait, others and running ones are untouched; lifting opens them in order', async () => {
    await create('run1', 'sleep');
    const running = json(await start('run1'));
    await waitAttempt(h.app, running.id, (a) => a.state === 'running', op);
    await create('q1', 'qa', { course: 'sec-101' });
    await create('q2', 'qa', { course: 'sec-101' });
    await create('q3', 'qa', { course: 'other' });
    expect(
      (await freeze({ name: 'exam', match: { plans: ['qa', 'sleep'], labels: { course: 'sec-101' } } }))
        .statusCode,
    ).toBe(201);
    // The freeze does not match run1's labels either way: it is running and stays so.
    const a1 = json(await start('q1'));
    const a2 = json(await start('q2'));
    const a3 = json(await start('q3'));
    const w1 = await waitAttempt(h.app, a1.id, (a) => a.waiting?.length > 0, op);
    expect(w1.waiting).toEqual([
      { gate: 'freeze', detail: { freeze: 'exam', until: expect.any(String) }, since: expect.any(String) },
    ]);
    expect(json(await h.app.inject({ url: '/v1/deployments/q1', headers: op })).state).toBe('deploying');
    await waitState(h.app, 'q3', 'ready', op); // not matched
    expect(json(await h.app.inject({ url: `/v1/attempts/${running.id}`, headers: op })).state).toBe(
      'running',
    );
    expect(json(await h.app.inject({ url: `/v1/attempts/${a2.id}`, headers: op })).state).toBe('queued');
    await waitAttempt(h.app, a2.id, (a) => a.waiting?.length > 0, op);
    // The surfaces count and list them under their gate.
    const metrics = (await h.app.inject({ url: '/metrics', headers: op })).body;
    expect(metrics).toContain('lifeline_attempts_waiting{gate="freeze"} 2');
    const listed = json(
      await h.app.inject({ url: '/v1/attempts?waiting=true&gate=freeze', headers: op }),
    ).items;
    expect(listed.map((a: { id: string }) => a.id)).toEqual([a1.id, a2.id]);

    expect((await lift('exam')).statusCode).toBe(204);
    await waitState(h.app, 'q1', 'ready', op);
    await waitState(h.app, 'q2', 'ready', op);
    const evs = await events();
    const opened = (id: string) =>
      evs.find((e: any) => e.attempt_id === id && e.type === 'gate_opened' && e.data.gate === 'freeze').seq;
    expect(opened(a1.id)).toBeLessThan(opened(a2.id));
    expect(evs.filter((e: any) => e.attempt_id === a3.id && e.type === 'gate_waiting')).toEqual([]);
    await h.app.inject({ method: 'POST', url: '/v1/deployments/run1/cancel', headers: op });
  });

  it('reject: 409 FROZEN and nothing written; admin force passes; an operator may not force', async () => {
    await create('h1', 'hard');
    expect((await freeze({ name: 'stop', match: { plans: ['hard'] }, when: 'reject' })).statusCode).toBe(201);
    // The last test's cancel may still be ending its attempt: its events are not this refusal's.
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    const no = expectProblem(await start('h1'), 409, 'FROZEN');
    expect(no.detail).toContain('freeze "stop" is in force until');
    expectProblem(await start('h1', op, { force: true }), 403, 'FORBIDDEN');
    expect(await snapshot(h.engine)).toEqual(before);
    const forced = await start('h1', admin, { force: true });
    expect(forced.statusCode, forced.body).toBe(202);
    await waitState(h.app, 'h1', 'ready', op);
    expect((await lift('stop')).statusCode).toBe(204);
  });

  it('a freeze that ends opens its waiting attempts by itself, mid-run', async () => {
    await create('t1', 'timed');
    const until = new Date(Date.now() + 1_500).toISOString();
    expect((await freeze({ name: 'short', match: { plans: ['timed'] }, until })).statusCode).toBe(201);
    const a = json(await start('t1'));
    await waitAttempt(h.app, a.id, (x) => x.waiting?.length > 0, op);
    const done = await waitAttempt(h.app, a.id, (x) => x.state === 'succeeded', op);
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(Date.parse(until));
    const listed = json(await h.app.inject({ url: '/v1/freezes', headers: op })).items;
    expect(listed.find((f: any) => f.name === 'short').in_force).toBe(false);
  });

  it('a retry due in a freeze waits for its end (a reject freeze too), then runs', async () => {
    await create('f1', 'flaky');
    expect((await freeze({ name: 'noretry', match: { plans: ['flaky'] }, when: 'reject' })).statusCode).toBe(
      201,
    );
    const first = json(await start('f1', admin, { force: true })); // passes the freeze, then fails
    const retry = await waitFor(async () => {
      const list = json(await h.app.inject({ url: '/v1/deployments/f1/attempts', headers: op })).items;
      const r = list.find((x: any) => x.number === 2);
      return r?.waiting?.length > 0 ? r : null;
    }, 'the retry to wait on the freeze');
    expect(first.number).toBe(1);
    expect(retry.waiting[0]).toMatchObject({ gate: 'freeze', detail: { freeze: 'noretry' } });
    expect((await lift('noretry')).statusCode).toBe(204);
    await waitAttempt(h.app, retry.id, (x) => x.state === 'failed', op);
  });
});
