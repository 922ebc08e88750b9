// If-Match and Idempotency-Key on writes (SPEC §6): stale versions are 412; a retried POST with the same
// key and body gets the first response again and writes nothing; another body is 422; a duplicate
// still in flight is 409; a 5xx releases the key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import {
  bearer,
  expectProblem,
  harness,
  json,
  quiesce,
  snapshot,
  waitState,
  type Harness,
} from './helpers.ts';
import { DIALECTS } from '../helpers/engine.ts';

let h: Harness;
// Gates that the wrapped api waits on, to hold a request in flight or make it fail once.
let holdDeploy: Promise<void> | null = null;
let failNextDeploy = false;

describe.each(DIALECTS)('on %s', (dialect) => {
  beforeAll(async () => {
    h = await harness({
      dialect,
      auth: true,
      wrapApi: (engine: Lifeline) =>
        new Proxy(engine, {
          get(target, prop, receiver) {
            const v = Reflect.get(target, prop, receiver);
            if (prop === 'startDeploy') {
              return async (...args: Parameters<Lifeline['startDeploy']>) => {
                if (holdDeploy) await holdDeploy;
                if (failNextDeploy) {
                  failNextDeploy = false;
                  throw new Error('simulated crash in the handler');
                }
                return target.startDeploy(...args);
              };
            }
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }),
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  const op = bearer('operator');
  const admin = bearer('admin');

  function post(url: string, payload: unknown, headers: Record<string, string>) {
    return h.app.inject({ method: 'POST', url, payload: payload as object, headers });
  }

  describe('If-Match', () => {
    it('every write checks the version: 412 VERSION_MISMATCH when stale, nothing written', async () => {
      const created = await post('/v1/deployments', { name: 'im-1', plan: 'ok' }, op);
      expect(created.statusCode).toBe(201);
      const stale = { ...admin, 'if-match': '"99"' };
      const before = await snapshot(h.engine);
      const writes: [string, string, unknown][] = [
        ['POST', '/v1/deployments/im-1/attempts', {}],
        ['POST', '/v1/deployments/im-1/teardown', { confirm: 'im-1' }],
        ['POST', '/v1/deployments/im-1/cancel', undefined],
        ['POST', '/v1/deployments/im-1/resolve', { state: 'ready', reason: 'r' }],
        ['POST', '/v1/deployments/im-1/check', undefined],
        ['DELETE', '/v1/deployments/im-1', undefined],
        ['POST', '/v1/deployments', { name: 'im-2', plan: 'ok' }], // no current version to match on create
      ];
      for (const [method, url, payload] of writes) {
        const res = await h.app.inject({
          method: method as 'POST',
          url,
          payload: payload as object,
          headers: stale,
        });
        expectProblem(res, 412, 'VERSION_MISMATCH');
      }
      expect(await snapshot(h.engine)).toEqual(before);
    });

    it('malformed If-Match is 400 VALIDATION; * and the current ETag pass', async () => {
      const before = await snapshot(h.engine);
      for (const bad of ['1', 'W/"1"', '"x"', '"1", "2"', '""']) {
        const res = await post('/v1/deployments/im-1/attempts', {}, { ...op, 'if-match': bad });
        expectProblem(res, 400, 'VALIDATION');
      }
      expect(await snapshot(h.engine)).toEqual(before);
      const etag = (await h.app.inject({ url: '/v1/deployments/im-1', headers: op })).headers.etag as string;
      const ok = await post('/v1/deployments/im-1/attempts', {}, { ...op, 'if-match': etag });
      expect(ok.statusCode, ok.body).toBe(202);
      await waitState(h.app, 'im-1', 'ready', op);
      const star = await post('/v1/deployments/im-1/attempts', {}, { ...op, 'if-match': '*' });
      expect(star.statusCode, star.body).toBe(202);
      await waitState(h.app, 'im-1', 'ready', op);
      // DELETE with the current version
      const td = await post('/v1/deployments/im-1/teardown', { confirm: 'im-1' }, op);
      expect(td.statusCode).toBe(202);
      await waitState(h.app, 'im-1', 'torn_down', op);
      const v = (await h.app.inject({ url: '/v1/deployments/im-1', headers: op })).headers.etag as string;
      const del = await h.app.inject({
        method: 'DELETE',
        url: '/v1/deployments/im-1',
        headers: { ...admin, 'if-match': v },
      });
      expect(del.statusCode).toBe(204);
    });
  });

  describe('Idempotency-Key', () => {
    it('same key and body: the first response again (status, body, ETag), nothing new written', async () => {
      const key = { ...op, 'idempotency-key': 'create-ik-1' };
      const first = await post(
        '/v1/deployments',
        { name: 'ik-1', plan: 'ok', labels: { a: '1', b: '2' } },
        key,
      );
      expect(first.statusCode).toBe(201);
      const before = await snapshot(h.engine);
      // same body with keys in another order
      const again = await post(
        '/v1/deployments',
        { labels: { b: '2', a: '1' }, plan: 'ok', name: 'ik-1' },
        key,
      );
      expect(again.statusCode).toBe(201);
      expect(json(again)).toEqual(json(first));
      expect(again.headers.etag).toBe(first.headers.etag);
      expect(again.headers.location).toBe(first.headers.location);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(await snapshot(h.engine)).toEqual(before);

      // the same key for the attempts route of that deployment is another scope
      const dep = await post('/v1/deployments/ik-1/attempts', {}, key);
      expect(dep.statusCode).toBe(202);
      await waitState(h.app, 'ik-1', 'ready', op);
      await quiesce(h.engine);
      const mid = await snapshot(h.engine);
      const depAgain = await post('/v1/deployments/ik-1/attempts', {}, key);
      expect(depAgain.statusCode).toBe(202);
      expect(json(depAgain)).toEqual(json(dep)); // the first response, as it was (queued)
      expect(await snapshot(h.engine)).toEqual(mid);
      // another caller's key space is separate: for the admin the same key is new (and the deploy runs)
      const other = await post(
        '/v1/deployments/ik-1/attempts',
        {},
        { ...admin, 'idempotency-key': 'create-ik-1' },
      );
      expect(other.statusCode).toBe(202);
      expect(json(other).id).not.toBe(json(dep).id);
      await waitState(h.app, 'ik-1', 'ready', op);
    });

    it('same key, different body: 422 VALIDATION, nothing written', async () => {
      await quiesce(h.engine);
      const before = await snapshot(h.engine);
      const res = await post(
        '/v1/deployments',
        { name: 'ik-other', plan: 'ok' },
        { ...op, 'idempotency-key': 'create-ik-1' },
      );
      const p = expectProblem(res, 422, 'VALIDATION');
      expect(p.detail).toMatch(/different request body/);
      expect(await snapshot(h.engine)).toEqual(before);
    });

    it('a refused (4xx) first response is stored and replayed', async () => {
      const key = { ...op, 'idempotency-key': 'td-mismatch' };
      const first = await post('/v1/deployments/ik-1/teardown', { confirm: 'wrong' }, key);
      expectProblem(first, 400, 'TEARDOWN_CONFIRM_MISMATCH');
      const again = await post('/v1/deployments/ik-1/teardown', { confirm: 'wrong' }, key);
      expect(again.statusCode).toBe(400);
      expect(again.headers['content-type']).toMatch(/^application\/problem\+json/);
      // the first problem, naming this request's trace id (the one in its log line)
      expect(json(again)).toEqual({ ...json(first), trace_id: again.headers['x-request-id'] });
      expect(again.headers['idempotent-replayed']).toBe('true');
    });

    it('a duplicate while the first is in flight is 409; afterwards it replays', async () => {
      await post('/v1/deployments', { name: 'ik-2', plan: 'ok' }, op);
      let release!: () => void;
      holdDeploy = new Promise((r) => (release = r));
      const key = { ...op, 'idempotency-key': 'inflight-1' };
      const first = post('/v1/deployments/ik-2/attempts', {}, key);
      await new Promise((r) => setTimeout(r, 100));
      const dup = await post('/v1/deployments/ik-2/attempts', {}, key);
      const p = expectProblem(dup, 409, 'INVALID_TRANSITION');
      expect(p.detail).toMatch(/still being processed/);
      expect(dup.headers['retry-after']).toBe('1');
      holdDeploy = null;
      release();
      const res = await first;
      expect(res.statusCode).toBe(202);
      await waitState(h.app, 'ik-2', 'ready', op);
      await quiesce(h.engine);
      const before = await snapshot(h.engine);
      const replay = await post('/v1/deployments/ik-2/attempts', {}, key);
      expect(replay.statusCode).toBe(202);
      expect(json(replay)).toEqual(json(res));
      expect(await snapshot(h.engine)).toEqual(before);
    });

    it('a 5xx releases the key, so a retry runs', async () => {
      failNextDeploy = true;
      const key = { ...op, 'idempotency-key': 'crash-1' };
      const crashed = await post('/v1/deployments/ik-2/attempts', {}, key);
      expectProblem(crashed, 500, 'INTERNAL');
      const retry = await post('/v1/deployments/ik-2/attempts', {}, key);
      expect(retry.statusCode, retry.body).toBe(202);
      expect(retry.headers['idempotent-replayed']).toBeUndefined();
      await waitState(h.app, 'ik-2', 'ready', op);
    });

    it('every POST route honours the key (cancel, resolve, check)', async () => {
      for (const [url, payload, headers] of [
        ['/v1/deployments/ik-2/cancel', undefined, op],
        ['/v1/deployments/ik-2/resolve', { state: 'ready', reason: 'x' }, admin],
        ['/v1/deployments/ik-2/check', undefined, op],
      ] as const) {
        const key = { ...headers, 'idempotency-key': `k-${url}` };
        const first = await post(url, payload, key);
        await quiesce(h.engine);
        const before = await snapshot(h.engine);
        const again = await post(url, payload, key);
        expect(again.statusCode).toBe(first.statusCode);
        const { trace_id: _a, ...firstBody } = json(first);
        const { trace_id: _b, ...againBody } = json(again);
        expect(againBody).toEqual(firstBody);
        expect(again.headers['idempotent-replayed']).toBe('true');
        expect(await snapshot(h.engine)).toEqual(before);
      }
    });

    it('a malformed key is 400 VALIDATION', async () => {
      for (const bad of ['', ' padded ', 'x'.repeat(300), 'tab\tin']) {
        const res = await post('/v1/deployments/ik-2/attempts', {}, { ...op, 'idempotency-key': bad });
        expectProblem(res, 400, 'VALIDATION');
      }
    });
  });
});
