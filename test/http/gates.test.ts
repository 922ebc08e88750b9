// Gates over HTTP (SPEC §13.1, §13.4) on SQLite and Postgres: a waiting attempt's `waiting` in the 202
// and in reads, GET /v1/attempts?waiting=true (and its bad input), 409 CONCURRENCY_LIMIT as
// problem+json with nothing written, a missing key param as 422, and /metrics counting waiting attempts.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tellCtl } from '../helpers/fifo.ts';
import { DIALECTS, FIXTURES, fixturePlans, waitFor } from '../helpers/engine.ts';
import { bearer, expectProblem, harness, json, type Harness } from './helpers.ts';

const params = { type: 'object', properties: { node: { type: 'string' } } };
const plans = {
  ...fixturePlans(),
  vm: {
    deploy: [path.join(FIXTURES, 'ctl.sh')],
    teardown: [path.join(FIXTURES, 'ctl.sh')],
    params,
    concurrency: { key: 'pve-${params.node}', limit: 1 },
  },
  strict: {
    deploy: [path.join(FIXTURES, 'ctl.sh')],
    teardown: [path.join(FIXTURES, 'ctl.sh')],
    params,
    concurrency: { key: 'strict-${params.node}', limit: 1, when_busy: 'reject' },
  },
};

let h: Harness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

async function tellExit(dir: string, depId: string, rc: number): Promise<void> {
  await tellCtl(dir, depId, rc);
}

describe.each(DIALECTS)('gates over HTTP on %s', (dialect) => {
  it('shows waiting, lists waiting attempts, counts them in /metrics, refuses bad input', async () => {
    h = await harness({ auth: true, dialect, extra: { plans } });
    const { app } = h;
    const post = (url: string, payload: unknown) =>
      app.inject({ method: 'POST', url, payload: payload as object, headers: bearer('operator') });
    const get = (url: string) => app.inject({ method: 'GET', url, headers: bearer('viewer') });
    const created: Record<string, string> = {};
    for (const n of ['a', 'b', 'c']) {
      const res = await post('/v1/deployments', { name: n, plan: 'vm', params: { node: 'n1' } });
      created[n] = json(res).id;
    }
    const a = json(await post('/v1/deployments/a/attempts', {}));
    expect(a.waiting).toEqual([]);
    const b = await post('/v1/deployments/b/attempts', {});
    expect(b.statusCode).toBe(202);
    expect(json(b).waiting).toEqual([
      { gate: 'concurrency', detail: { key: 'pve-n1', position: 1 }, since: expect.any(String) },
    ]);
    await post('/v1/deployments/c/attempts', {});

    const list = json(await get('/v1/attempts?waiting=true'));
    expect(list.items.map((x: { deployment_id: string }) => x.deployment_id)).toEqual([created.b, created.c]);
    expect(list.items[1].waiting[0].detail).toEqual({ key: 'pve-n1', position: 2 });
    expect(json(await get('/v1/attempts?waiting=true&gate=concurrency')).items).toHaveLength(2);
    expect(json(await get('/v1/attempts?waiting=true&gate=freeze')).items).toEqual([]);
    expectProblem(await get('/v1/attempts'), 422, 'VALIDATION');
    expectProblem(await get('/v1/attempts?waiting=false'), 422, 'VALIDATION');
    expectProblem(await get('/v1/attempts?waiting=true&gate=nope'), 422, 'VALIDATION');

    const metrics = await app.inject({ method: 'GET', url: '/metrics', headers: bearer('viewer') });
    expect(metrics.body).toMatch(/^lifeline_attempts_waiting\{gate="concurrency"\} 2$/m);
    expect(metrics.body).toMatch(/^lifeline_attempts_waiting\{gate="freeze"\} 0$/m);

    await waitFor(async () => json(await get(`/v1/attempts/${a.id}`)).state === 'running', 'a running');
    await tellExit(h.dir, created.a, 0);
    await waitFor(async () => json(await get('/v1/attempts?waiting=true')).items.length === 1, 'b opened');
    const cancel = json(await post('/v1/deployments/c/cancel', {}));
    expect([cancel.state, cancel.reason, cancel.waiting]).toEqual(['cancelled', 'cancelled', []]);
    await waitFor(async () => json(await get(`/v1/attempts/${json(b).id}`)).state === 'running', 'b running');
    await tellExit(h.dir, created.b, 0);
    await waitFor(async () => json(await get(`/v1/attempts/${json(b).id}`)).state === 'succeeded', 'b done');
  });

  it('409 CONCURRENCY_LIMIT names the key and holders; 422 for a missing key param; nothing written', async () => {
    h = await harness({ auth: true, dialect, extra: { plans } });
    const { app } = h;
    const post = (url: string, payload: unknown) =>
      app.inject({ method: 'POST', url, payload: payload as object, headers: bearer('operator') });
    await post('/v1/deployments', { name: 's1', plan: 'strict', params: { node: 'x' } });
    await post('/v1/deployments', { name: 's2', plan: 'strict', params: { node: 'x' } });
    await post('/v1/deployments', { name: 'nokey', plan: 'vm' });
    const s1 = json(await post('/v1/deployments/s1/attempts', {}));
    // Scoped to the refused deployments: s1's own start and output events may land meanwhile.
    const eventsOf = async (name: string) =>
      json(
        await app.inject({
          method: 'GET',
          url: `/v1/deployments/${name}/events?limit=1000`,
          headers: bearer('viewer'),
        }),
      ).items;
    const attemptsOf = async (name: string) =>
      json(
        await app.inject({
          method: 'GET',
          url: `/v1/deployments/${name}/attempts`,
          headers: bearer('viewer'),
        }),
      ).items;
    const before = { s2: await eventsOf('s2'), nokey: await eventsOf('nokey') };
    const p = expectProblem(await post('/v1/deployments/s2/attempts', {}), 409, 'CONCURRENCY_LIMIT');
    expect(p.detail).toContain('strict-x');
    expect(p.detail).toContain(s1.id);
    const q = expectProblem(await post('/v1/deployments/nokey/attempts', {}), 422, 'VALIDATION');
    expect(q.errors).toEqual([{ field: 'params.node', reason: expect.stringContaining('concurrency key') }]);
    expect(await eventsOf('s2')).toEqual(before.s2);
    expect(await eventsOf('nokey')).toEqual(before.nokey);
    expect(await attemptsOf('s2')).toEqual([]);
    expect(await attemptsOf('nokey')).toEqual([]);
    await waitFor(
      async () =>
        json(await app.inject({ method: 'GET', url: `/v1/attempts/${s1.id}`, headers: bearer('viewer') }))
          .state === 'running',
      's1 running',
    );
    await tellExit(h.dir, s1.deployment_id, 0);
    await waitFor(
      async () =>
        json(await app.inject({ method: 'GET', url: `/v1/attempts/${s1.id}`, headers: bearer('viewer') }))
          .state === 'succeeded',
      's1 done',
    );
  });
});
