// Every route of SPEC §6 and every error code it names, through inject() against a real engine.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LifelineError } from '../../src/domain/errors.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { VERSION } from '../../src/version.ts';
import { waitFor } from '../helpers/engine.ts';
import {
  expectProblem,
  harness,
  json,
  makeUnknown,
  quiesce,
  snapshot,
  waitAttempt,
  waitState,
  type Harness,
} from './helpers.ts';
import { DIALECTS } from '../helpers/engine.ts';

let h: Harness;
describe.each(DIALECTS)('on %s', (dialect) => {
  beforeAll(async () => {
    h = await harness({ dialect });
  });
  afterAll(async () => {
    await h?.close();
  });

  const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url, payload: payload as object, headers });
  const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ url, headers });

  async function create(name: string, plan = 'ok', extra: Record<string, unknown> = {}) {
    const res = await post('/v1/deployments', { name, plan, ...extra });
    expect(res.statusCode, res.body).toBe(201);
    return json(res);
  }

  async function deployed(name: string, plan = 'ok') {
    await create(name, plan);
    const res = await post(`/v1/deployments/${name}/attempts`);
    expect(res.statusCode, res.body).toBe(202);
    return waitState(h.app, name, 'ready');
  }

  describe('health, plans, instances', () => {
    it('GET /v1/health', async () => {
      const res = await get('/v1/health');
      expect(res.statusCode).toBe(200);
      expect(json(res)).toEqual({ status: 'ok', version: VERSION, instance: h.engine.instanceId });
    });

    it('GET /v1/health/ready is 200 {ready, checks}', async () => {
      const res = await get('/v1/health/ready');
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(json(res)).toEqual({ ready: true, checks: { db: true, data_dir: true } });
    });

    it('GET /v1/plans', async () => {
      const res = await get('/v1/plans');
      expect(res.statusCode).toBe(200);
      const items = json(res).items as { name: string; has_check: boolean; params_schema: object }[];
      expect(items.find((p) => p.name === 'ok')).toMatchObject({ has_check: true, description: '' });
      expect(items.find((p) => p.name === 'fail')).toMatchObject({ has_check: false });
      expect(items.find((p) => p.name === 'secret')?.params_schema).toMatchObject({ type: 'object' });
    });

    it('GET /v1/instances', async () => {
      const res = await get('/v1/instances');
      expect(res.statusCode).toBe(200);
      expect(json(res).items).toEqual([
        expect.objectContaining({ id: h.engine.instanceId, role: 'server', alive: true, data_dir: h.dir }),
      ]);
    });
  });

  describe('deployments', () => {
    it('POST /v1/deployments: 201 pending, ETag and Location; masks writeOnly params', async () => {
      const res = await post('/v1/deployments', {
        name: 'web-1',
        plan: 'secret',
        params: { password: 'hunter2', replicas: 2 },
        labels: { team: 'a', tier: 'web' },
      });
      expect(res.statusCode, res.body).toBe(201);
      const d = json(res);
      expect(d).toMatchObject({
        id: expect.stringMatching(/^dep_/),
        name: 'web-1',
        plan: 'secret',
        state: 'pending',
        version: 1,
        current_attempt: null,
        labels: { team: 'a', tier: 'web' },
      });
      expect(d.params.replicas).toBe(2);
      expect(res.body).not.toContain('hunter2');
      expect(res.headers.etag).toBe('"1"');
      expect(res.headers.location).toBe(`/v1/deployments/${d.id}`);
    });

    it('409 DEPLOYMENT_EXISTS, 404 PLAN_NOT_FOUND, 422 VALIDATION (schema and params), 400 malformed JSON', async () => {
      const before = await snapshot(h.engine);
      expectProblem(await post('/v1/deployments', { name: 'web-1', plan: 'ok' }), 409, 'DEPLOYMENT_EXISTS');
      expectProblem(await post('/v1/deployments', { name: 'web-x', plan: 'nope' }), 404, 'PLAN_NOT_FOUND');
      const bad = expectProblem(
        await post('/v1/deployments', { name: 'Bad Name', plan: 'ok' }),
        422,
        'VALIDATION',
      );
      expect(bad.errors).toContainEqual({ field: 'name', reason: expect.any(String) });
      const params = expectProblem(
        await post('/v1/deployments', { name: 'web-y', plan: 'secret', params: { replicas: 0, extra: 1 } }),
        422,
        'VALIDATION',
      );
      expect(params.errors?.map((e) => e.field)).toEqual(
        expect.arrayContaining(['params.replicas', 'params.extra']),
      );
      const unknownField = expectProblem(
        await post('/v1/deployments', { name: 'web-z', plan: 'ok', colour: 'red' }),
        422,
        'VALIDATION',
      );
      expect(unknownField.errors).toContainEqual({ field: 'colour', reason: 'is not a known field' });
      expectProblem(await post('/v1/deployments', { name: 'web-z' }), 422, 'VALIDATION');
      expectProblem(await post('/v1/deployments', [1, 2]), 422, 'VALIDATION');
      expectProblem(
        await h.app.inject({
          method: 'POST',
          url: '/v1/deployments',
          headers: { 'content-type': 'application/json' },
          payload: '{"name": "web-z",',
        }),
        400,
        'VALIDATION',
      );
      expectProblem(
        await h.app.inject({
          method: 'POST',
          url: '/v1/deployments',
          headers: { 'content-type': 'application/json' },
          payload: '{"__proto__": {"x": 1}, "name": "web-p", "plan": "ok"}',
        }),
        400,
        'VALIDATION',
      );
      const deep = '['.repeat(100_000) + ']'.repeat(100_000);
      const tooDeep = expectProblem(
        await h.app.inject({
          method: 'POST',
          url: '/v1/deployments',
          headers: { 'content-type': 'application/json', 'idempotency-key': 'deep' },
          payload: `{"name": "web-d", "plan": "ok", "params": {"a": ${deep}}}`,
        }),
        422,
        'VALIDATION',
      );
      expect(tooDeep.detail).toMatch(/nests deeper than 32 levels/);
      expect(await snapshot(h.engine)).toEqual(before);
    });

    it('GET /v1/deployments: filters, label=k=v (repeatable), keyset paging, limit bounds', async () => {
      await create('list-a', 'ok', { labels: { team: 'x', env: 'prod' } });
      await create('list-b', 'fail', { labels: { team: 'x', env: 'dev' } });
      await create('list-c', 'ok', { labels: { team: 'y' } });
      const byLabel = json(await get('/v1/deployments?label=team=x'));
      expect(byLabel.items.map((d: { name: string }) => d.name)).toEqual(['list-b', 'list-a']);
      const both = json(await get('/v1/deployments?label=team=x&label=env=prod'));
      expect(both.items.map((d: { name: string }) => d.name)).toEqual(['list-a']);
      const byPlan = json(await get('/v1/deployments?plan=fail'));
      expect(byPlan.items.map((d: { name: string }) => d.name)).toContain('list-b');
      expect(byPlan.items.every((d: { plan: string }) => d.plan === 'fail')).toBe(true);
      const byState = json(await get('/v1/deployments?state=pending'));
      expect(byState.items.every((d: { state: string }) => d.state === 'pending')).toBe(true);

      // newest first, pages of 2 that join up without overlap
      const all = json(await get('/v1/deployments?limit=500')).items.map((d: { id: string }) => d.id);
      expect([...all].sort().reverse()).toEqual(all);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { items: { id: string }[]; next_cursor: string | null } = json(
          await get(`/v1/deployments?limit=2${cursor ? `&cursor=${cursor}` : ''}`),
        );
        seen.push(...page.items.map((d: { id: string }) => d.id));
        cursor = page.next_cursor;
      } while (cursor);
      expect(seen).toEqual(all);

      for (const q of [
        'limit=501',
        'limit=0',
        'limit=-1',
        'limit=abc',
        'limit=1.5',
        'limit=1e2',
        'state=bogus',
      ]) {
        expectProblem(await get(`/v1/deployments?${q}`), 422, 'VALIDATION');
      }
      expectProblem(await get('/v1/deployments?label=novalue'), 422, 'VALIDATION');
      expectProblem(await get('/v1/deployments?cursor=junk'), 422, 'VALIDATION');
    });

    it('GET /v1/deployments/{ref} by id and by name, with ETag; 404 NOT_FOUND', async () => {
      const byName = await get('/v1/deployments/list-a');
      expect(byName.statusCode).toBe(200);
      expect(byName.headers.etag).toBe(`"${json(byName).version}"`);
      const byId = await get(`/v1/deployments/${json(byName).id}`);
      expect(json(byId)).toEqual(json(byName));
      expectProblem(await get('/v1/deployments/nope'), 404, 'NOT_FOUND');
      expectProblem(await get('/v1/deployments/dep_01ARZ3NDEKTSV4RRFFQ69G5FAV'), 404, 'NOT_FOUND');
    });

    it('DELETE /v1/deployments/{ref}: 204; 409 INVALID_TRANSITION unless pending/torn_down or forced', async () => {
      await create('del-1');
      const res = await h.app.inject({ method: 'DELETE', url: '/v1/deployments/del-1' });
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expectProblem(await get('/v1/deployments/del-1'), 404, 'NOT_FOUND');
      expectProblem(await h.app.inject({ method: 'DELETE', url: '/v1/deployments/del-1' }), 404, 'NOT_FOUND');

      await deployed('del-2');
      const before = await snapshot(h.engine);
      expectProblem(
        await h.app.inject({ method: 'DELETE', url: '/v1/deployments/del-2' }),
        409,
        'INVALID_TRANSITION',
      );
      expectProblem(
        await h.app.inject({ method: 'DELETE', url: '/v1/deployments/del-2?force=yes' }),
        422,
        'VALIDATION',
      );
      expect(await snapshot(h.engine)).toEqual(before);
      const forced = await h.app.inject({ method: 'DELETE', url: '/v1/deployments/del-2?force=true' });
      expect(forced.statusCode).toBe(204);
      const events = json(await get('/v1/events?type=deployment_deleted')).items;
      expect(events.map((e: { data: { name: string } }) => e.data.name)).toEqual(['del-1', 'del-2']);
    });

    it('GET /v1/deployments/{ref}/transitions', async () => {
      await deployed('tr-1');
      const res = await get('/v1/deployments/tr-1/transitions');
      expect(res.statusCode).toBe(200);
      const items = json(res).items;
      expect(items.map((t: { to: string }) => t.to)).toEqual(['pending', 'deploying', 'ready']);
      expect(items[1]).toMatchObject({
        from: 'pending',
        trigger: 'deploy_accepted',
        actor: 'anonymous',
        attempt_id: expect.stringMatching(/^att_/),
      });
      expectProblem(await get('/v1/deployments/nope/transitions'), 404, 'NOT_FOUND');
    });
  });

  describe('attempts', () => {
    it('POST …/attempts: 202 queued and the deployment is deploying; 409 ATTEMPT_IN_PROGRESS', async () => {
      await create('att-1', 'sleep');
      const res = await post('/v1/deployments/att-1/attempts', {});
      expect(res.statusCode, res.body).toBe(202);
      const a = json(res);
      expect(a).toMatchObject({ number: 1, kind: 'deploy', force: false, requested_by: 'anonymous' });
      expect(['queued', 'running']).toContain(a.state);
      expect(res.headers.location).toBe(`/v1/attempts/${a.id}`);
      const dep = json(await get('/v1/deployments/att-1'));
      expect(dep).toMatchObject({ state: 'deploying', current_attempt: { id: a.id, kind: 'deploy' } });

      const before = await snapshot(h.engine);
      expectProblem(await post('/v1/deployments/att-1/attempts'), 409, 'ATTEMPT_IN_PROGRESS');
      expectProblem(
        await post('/v1/deployments/att-1/teardown', { confirm: 'att-1' }),
        409,
        'ATTEMPT_IN_PROGRESS',
      );
      expectProblem(await post('/v1/deployments/att-1/check'), 409, 'INVALID_TRANSITION');
      expectProblem(
        await h.app.inject({ method: 'DELETE', url: '/v1/deployments/att-1' }),
        409,
        'INVALID_TRANSITION',
      );
      expectProblem(await post('/v1/deployments/nope/attempts'), 404, 'NOT_FOUND');
      expectProblem(await post('/v1/deployments/att-1/attempts', { force: 'yes' }), 422, 'VALIDATION');
      expectProblem(await post('/v1/deployments/att-1/attempts', { params: [] }), 422, 'VALIDATION');
      expect((await snapshot(h.engine)).attempts).toBe(before.attempts);

      // cancel: 202 with the attempt; the deployment ends failed (cancelled while running) or back to pending
      await waitAttempt(h.app, a.id, (x) => x.state === 'running');
      const cancel = await post('/v1/deployments/att-1/cancel');
      expect(cancel.statusCode, cancel.body).toBe(202);
      expect(json(cancel)).toMatchObject({ id: a.id, cancel_requested_at: expect.any(String) });
      const ended = await waitAttempt(h.app, a.id, (x) => x.state === 'cancelled');
      expect(ended.reason).toBe('cancelled');
      await waitState(h.app, 'att-1', 'failed');
      expectProblem(await post('/v1/deployments/att-1/cancel'), 409, 'NO_INFLIGHT_ATTEMPT');
      expectProblem(await post('/v1/deployments/att-1/cancel', { now: true }), 422, 'VALIDATION');
      expectProblem(await post('/v1/deployments/nope/cancel'), 404, 'NOT_FOUND');
    });

    it('params on a deploy attempt are validated against the plan (422) and merged', async () => {
      await create('att-p', 'secret', { params: { replicas: 1 } });
      const before = await snapshot(h.engine);
      const bad = expectProblem(
        await post('/v1/deployments/att-p/attempts', { params: { replicas: 'many' } }),
        422,
        'VALIDATION',
      );
      expect(bad.errors?.[0].field).toBe('params.replicas');
      expect(await snapshot(h.engine)).toEqual(before);
      const ok = await post('/v1/deployments/att-p/attempts', {
        params: { replicas: 3, password: 'pw-123456' },
      });
      expect(ok.statusCode, ok.body).toBe(202);
      expect(json(ok).params).toMatchObject({ replicas: 3 });
      expect(ok.body).not.toContain('pw-123456');
      await waitState(h.app, 'att-p', 'ready');
    });

    it('GET …/attempts (newest first, paged), GET /v1/attempts/{id}, and the log as text/plain with offsets', async () => {
      await deployed('log-1');
      const second = await post('/v1/deployments/log-1/attempts');
      expect(second.statusCode).toBe(202);
      await waitState(h.app, 'log-1', 'ready');
      const list = json(await get('/v1/deployments/log-1/attempts'));
      expect(list.items.map((a: { number: number }) => a.number)).toEqual([2, 1]);
      expect(list.next_cursor).toBeNull();
      const p1 = json(await get('/v1/deployments/log-1/attempts?limit=1'));
      expect(p1.items.map((a: { number: number }) => a.number)).toEqual([2]);
      const p2 = json(await get(`/v1/deployments/log-1/attempts?limit=1&cursor=${p1.next_cursor}`));
      expect(p2.items.map((a: { number: number }) => a.number)).toEqual([1]);
      expectProblem(await get('/v1/deployments/log-1/attempts?limit=501'), 422, 'VALIDATION');
      expectProblem(await get('/v1/deployments/nope/attempts'), 404, 'NOT_FOUND');

      const id = list.items[1].id;
      const one = await get(`/v1/attempts/${id}`);
      expect(one.statusCode).toBe(200);
      expect(json(one)).toMatchObject({ id, state: 'succeeded', rc: 0, reason: null, number: 1 });
      expectProblem(await get('/v1/attempts/att_nope'), 404, 'NOT_FOUND');

      const log = await get(`/v1/attempts/${id}/log`);
      expect(log.statusCode).toBe(200);
      expect(log.headers['content-type']).toMatch(/^text\/plain/);
      expect(log.body).toContain('deploying log-1 attempt 1 (deploy)');
      expect(log.body).toContain('to stderr');
      const total = Buffer.byteLength(log.body);
      expect(log.headers['lifeline-next-offset']).toBe(String(total));
      const tail = await get(`/v1/attempts/${id}/log?offset=10`);
      expect(tail.body).toBe(Buffer.from(log.body).subarray(10).toString());
      const end = await get(`/v1/attempts/${id}/log?offset=${total}`);
      expect(end.body).toBe('');
      expect(end.headers['lifeline-next-offset']).toBe(String(total));
      // limit: pages end on whole lines and chain through the header; tail: the last lines.
      let paged = '';
      for (let at = 0; ;) {
        const page = await get(`/v1/attempts/${id}/log?offset=${at}&limit=20`);
        if (page.body === '') break;
        expect(Buffer.byteLength(page.body)).toBeLessThanOrEqual(20);
        paged += page.body;
        at = Number(page.headers['lifeline-next-offset']);
      }
      expect(paged).toBe(log.body);
      const lastTwo = await get(`/v1/attempts/${id}/log?tail=2`);
      expect(lastTwo.body).toBe(`${log.body.replace(/\n$/, '').split('\n').slice(-2).join('\n')}\n`);
      expect(lastTwo.headers['lifeline-next-offset']).toBe(String(total));
      expectProblem(await get(`/v1/attempts/${id}/log?tail=0`), 422, 'VALIDATION');
      expectProblem(await get(`/v1/attempts/${id}/log?limit=0`), 422, 'VALIDATION');
      expectProblem(await get(`/v1/attempts/${id}/log?offset=-1`), 422, 'VALIDATION');
      expectProblem(await get(`/v1/attempts/${id}/log?offset=x`), 422, 'VALIDATION');
      expectProblem(await get('/v1/attempts/att_nope/log'), 404, 'NOT_FOUND');
    });

    it('teardown: 400 TEARDOWN_CONFIRM_MISMATCH, 202 teardown attempt, then 409 ALREADY_TORN_DOWN', async () => {
      await deployed('td-1');
      const before = await snapshot(h.engine);
      expectProblem(
        await post('/v1/deployments/td-1/teardown', { confirm: 'td-2' }),
        400,
        'TEARDOWN_CONFIRM_MISMATCH',
      );
      // A missing confirm does not repeat the name either
      expectProblem(await post('/v1/deployments/td-1/teardown', {}), 400, 'TEARDOWN_CONFIRM_MISMATCH');
      expectProblem(await post('/v1/deployments/td-1/teardown'), 400, 'TEARDOWN_CONFIRM_MISMATCH');
      expectProblem(await post('/v1/deployments/td-1/teardown', { confirm: 1 }), 422, 'VALIDATION');
      expect(await snapshot(h.engine)).toEqual(before);
      const res = await post('/v1/deployments/td-1/teardown', { confirm: 'td-1' });
      expect(res.statusCode, res.body).toBe(202);
      expect(json(res)).toMatchObject({ kind: 'teardown', number: 2 });
      await waitState(h.app, 'td-1', 'torn_down');
      expectProblem(
        await post('/v1/deployments/td-1/teardown', { confirm: 'td-1' }),
        409,
        'ALREADY_TORN_DOWN',
      );
      expectProblem(await post('/v1/deployments/nope/teardown', { confirm: 'nope' }), 404, 'NOT_FOUND');
      // deploy again from torn_down is allowed
      expect((await post('/v1/deployments/td-1/attempts')).statusCode).toBe(202);
      await waitState(h.app, 'td-1', 'ready');
    });

    it('unknown: 409 DEPLOYMENT_UNKNOWN_STATE until resolved (200) or forced; resolve on a known state is 409', async () => {
      await makeUnknown(h, 'unk-1');
      const before = await snapshot(h.engine);
      expectProblem(await post('/v1/deployments/unk-1/attempts'), 409, 'DEPLOYMENT_UNKNOWN_STATE');
      expectProblem(
        await post('/v1/deployments/unk-1/teardown', { confirm: 'unk-1' }),
        409,
        'DEPLOYMENT_UNKNOWN_STATE',
      );
      expectProblem(await post('/v1/deployments/unk-1/resolve', { state: 'ready' }), 422, 'VALIDATION');
      expectProblem(
        await post('/v1/deployments/unk-1/resolve', { state: 'ready', reason: '  ' }),
        422,
        'VALIDATION',
      );
      expectProblem(
        await post('/v1/deployments/unk-1/resolve', { state: 'pending', reason: 'x' }),
        422,
        'VALIDATION',
      );
      expect(await snapshot(h.engine)).toEqual(before);

      const res = await post('/v1/deployments/unk-1/resolve', { state: 'failed', reason: 'checked by hand' });
      expect(res.statusCode, res.body).toBe(200);
      expect(json(res)).toMatchObject({ name: 'unk-1', state: 'failed' });
      expect(res.headers.etag).toBe(`"${json(res).version}"`);
      const t = json(await get('/v1/deployments/unk-1/transitions')).items.at(-1);
      expect(t).toMatchObject({
        from: 'unknown',
        to: 'failed',
        trigger: 'resolved',
        reason: 'checked by hand',
      });
      expectProblem(
        await post('/v1/deployments/unk-1/resolve', { state: 'ready', reason: 'again' }),
        409,
        'INVALID_TRANSITION',
      );
      expectProblem(
        await post('/v1/deployments/nope/resolve', { state: 'ready', reason: 'x' }),
        404,
        'NOT_FOUND',
      );

      await makeUnknown(h, 'unk-2');
      const forced = await post('/v1/deployments/unk-2/teardown', { confirm: 'unk-2', force: true });
      expect(forced.statusCode, forced.body).toBe(202);
      expect(json(forced)).toMatchObject({ kind: 'teardown', force: true });
      await waitState(h.app, 'unk-2', 'torn_down');
    });

    it('check: 202, appends check_result, resolves unknown; 409 INVALID_TRANSITION without a check', async () => {
      await deployed('chk-1');
      const res = await post('/v1/deployments/chk-1/check');
      expect(res.statusCode, res.body).toBe(202);
      expect(json(res)).toEqual({ deployment_id: expect.stringMatching(/^dep_/), status: 'accepted' });
      const ev = await waitFor(async () => {
        // The deploy's own verifying check (SPEC §9.3) came first, by the runner.
        const items = json(await get('/v1/deployments/chk-1/events?type=check_result')).items;
        expect(items[0].data).toMatchObject({ verdict: 'up', actor: 'runner', verify: 'deploy' });
        return items.find((e: { data: { actor: string } }) => e.data.actor === 'anonymous') ?? null;
      }, 'check_result');
      expect(ev.data).toMatchObject({ rc: 0, verdict: 'up', actor: 'anonymous' });

      await create('chk-2', 'fail');
      expectProblem(await post('/v1/deployments/chk-2/check'), 409, 'INVALID_TRANSITION');
      expectProblem(await post('/v1/deployments/nope/check'), 404, 'NOT_FOUND');
      expectProblem(await post('/v1/deployments/chk-1/check', { x: 1 }), 422, 'VALIDATION');
    });
  });

  describe('events', () => {
    it('GET /v1/events and …/{ref}/events: seq order, after, limit, type and deployment filters', async () => {
      await quiesce(h.engine);
      const all = json(await get('/v1/events?limit=1000'));
      const seqs = all.items.map((e: { seq: number }) => e.seq);
      expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1));
      expect(all.next_after).toBe(seqs.at(-1));
      const page = json(await get('/v1/events?after=3&limit=2'));
      expect(page.items.map((e: { seq: number }) => e.seq)).toEqual([4, 5]);
      expect(page.next_after).toBe(5);
      const empty = json(await get(`/v1/events?after=${all.next_after}`));
      expect(empty).toEqual({ items: [], next_after: all.next_after, logs_pruned_before: null });

      const mine = json(await get('/v1/deployments/tr-1/events'));
      const id = json(await get('/v1/deployments/tr-1')).id;
      expect(mine.items.length).toBeGreaterThan(3);
      expect(mine.items.every((e: { deployment_id: string }) => e.deployment_id === id)).toBe(true);
      expect(json(await get('/v1/events?deployment=tr-1&limit=1000')).items).toEqual(mine.items);
      const typed = json(await get('/v1/deployments/tr-1/events?type=state_transition,attempt_end'));
      expect(new Set(typed.items.map((e: { type: string }) => e.type))).toEqual(
        new Set(['state_transition', 'attempt_end']),
      );
      const repeated = json(await get('/v1/deployments/tr-1/events?type=state_transition&type=attempt_end'));
      expect(repeated).toEqual(typed);

      expectProblem(await get('/v1/events?type=bogus'), 422, 'VALIDATION');
      expectProblem(await get('/v1/events?after=-1'), 422, 'VALIDATION');
      expectProblem(await get('/v1/events?limit=1001'), 422, 'VALIDATION');
      expectProblem(await get('/v1/events?deployment=nope'), 404, 'NOT_FOUND');
      expectProblem(await get('/v1/deployments/nope/events'), 404, 'NOT_FOUND');
    });
  });

  describe('If-Match (VERSION_MISMATCH)', () => {
    it('a stale version is 412 and writes nothing; the current one passes', async () => {
      await create('ver-1');
      const etag = (await get('/v1/deployments/ver-1')).headers.etag as string;
      expect(etag).toBe('"1"');
      const before = await snapshot(h.engine);
      const stale = expectProblem(
        await post('/v1/deployments/ver-1/attempts', {}, { 'if-match': '"7"' }),
        412,
        'VERSION_MISMATCH',
      );
      expect(stale.detail).toContain('version 1');
      expect(await snapshot(h.engine)).toEqual(before);
      const ok = await post('/v1/deployments/ver-1/attempts', {}, { 'if-match': etag });
      expect(ok.statusCode).toBe(202);
    });
  });

  describe('transport errors', () => {
    it('413 PAYLOAD_TOO_LARGE, 415 on other content types, 404 and 405 problems, bad URL 400', async () => {
      await quiesce(h.engine);
      const before = await snapshot(h.engine);
      const big = await h.app.inject({
        method: 'POST',
        url: '/v1/deployments',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ name: 'big', plan: 'ok', labels: { a: 'x'.repeat(1_100_000) } }),
      });
      expectProblem(big, 413, 'PAYLOAD_TOO_LARGE');
      for (const ct of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'xml',
      ]) {
        const res = await h.app.inject({
          method: 'POST',
          url: '/v1/deployments',
          headers: { 'content-type': ct },
          payload: 'name=x&plan=ok',
        });
        expectProblem(res, 415, 'VALIDATION');
      }
      expectProblem(await get('/v1/nothing-here'), 404, 'NOT_FOUND');
      expectProblem(await get('/nothing'), 404, 'NOT_FOUND');
      const put = await h.app.inject({ method: 'PUT', url: '/v1/deployments/x', payload: {} });
      expectProblem(put, 405, 'NOT_FOUND');
      expect(put.headers.allow).toContain('DELETE');
      expectProblem(await h.app.inject({ method: 'GET', url: '/v1/deployments/x/cancel' }), 405, 'NOT_FOUND');
      expectProblem(await get('/v1/deployments/%E0%A4%A'), 400, 'VALIDATION');
      expect(await snapshot(h.engine)).toEqual(before);
    });

    it('X-Request-Id: a sane incoming id is echoed and used as trace_id; anything else is replaced', async () => {
      const mine = await get('/v1/deployments/nope', { 'x-request-id': 'req-abc.123' });
      expect(mine.headers['x-request-id']).toBe('req-abc.123');
      expect(json(mine).trace_id).toBe('req-abc.123');
      const hostile = await get('/v1/deployments/nope', { 'x-request-id': 'a b<script>' });
      expect(hostile.headers['x-request-id']).not.toBe('a b<script>');
      expect(hostile.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const ok = await get('/v1/health');
      expect(ok.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });
  });

  describe('server-side failures', () => {
    let broken: Harness;
    afterAll(async () => {
      await broken?.close().catch(() => undefined);
    });

    it('an unexpected error is a 500 problem without stack or internal message', async () => {
      broken = await harness({
        dialect,
        wrapApi: (engine: Lifeline) =>
          new Proxy(engine, {
            get(target, prop, receiver) {
              if (prop === 'listPlans') {
                return () => {
                  throw new Error('boom at /secret/internal/path.ts:42');
                };
              }
              if (prop === 'getAttempt') {
                return async () => {
                  throw new LifelineError('ATTEMPT_TERMINAL', 'the attempt already ended');
                };
              }
              const v = Reflect.get(target, prop, receiver);
              return typeof v === 'function' ? v.bind(target) : v;
            },
          }),
      });
      const res = await broken.app.inject({ url: '/v1/plans' });
      const p = expectProblem(res, 500, 'INTERNAL');
      expect(res.body).not.toContain('boom');
      expect(res.body).not.toContain('/secret/');
      expect(res.body).not.toContain('at ');
      expect(p.detail).toContain(json(res).trace_id);
      // any SPEC code the service throws maps to its status
      expectProblem(await broken.app.inject({ url: '/v1/attempts/att_x' }), 409, 'ATTEMPT_TERMINAL');
    });

    it('a store that is gone is 503 STORE_UNAVAILABLE; readiness is 503 {ready: false}', async () => {
      await broken.engine.store.close();
      const res = await broken.app.inject({ url: '/v1/deployments' });
      expectProblem(res, 503, 'STORE_UNAVAILABLE');
      expect(res.headers['retry-after']).toBeDefined();
      const write = await broken.app.inject({
        method: 'POST',
        url: '/v1/deployments',
        payload: { name: 'x', plan: 'ok' },
      });
      expectProblem(write, 503, 'STORE_UNAVAILABLE');
      const ready = await broken.app.inject({ url: '/v1/health/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.headers['content-type']).toMatch(/^application\/json/);
      expect(json(ready)).toMatchObject({ ready: false, checks: { db: false } });
      expect((await broken.app.inject({ url: '/v1/health' })).statusCode).toBe(200);
    });
  });
});
