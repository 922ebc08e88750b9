// Apply (SPEC §14.1) over HTTP on both stores: plan, apply with the digest, re-apply does nothing,
// a write between plan and apply → PLAN_STALE with nothing written, prune safety, unknown blocked,
// bad documents named by field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, waitFor } from '../helpers/engine.ts';
import {
  bearer,
  expectProblem,
  harness,
  json,
  makeUnknown,
  quiesce,
  snapshot,
  waitState,
  type Harness,
} from './helpers.ts';

const op = bearer('operator');

const stackDoc = (name: string, size = 1) => ({
  name,
  units: [
    { key: 'net', plan: 'ok', params: { size } },
    { key: 'db', plan: 'secret', params: { password: 'hunter2' }, after: ['net'] },
  ],
});

describe.each(DIALECTS)('apply on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ dialect, auth: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  const post = (url: string, payload: unknown, headers = op) =>
    h.app.inject({ method: 'POST', url, payload: payload as never, headers });
  const plan = async (body: Record<string, unknown>) => {
    const res = await post('/v1/apply/plan', body);
    expect(res.statusCode, res.body).toBe(200);
    return json(res);
  };
  const apply = async (body: Record<string, unknown>) => {
    const p = await plan(body);
    const res = await post('/v1/apply', { ...body, digest: p.digest });
    expect(res.statusCode, res.body).toBe(200);
    return json(res);
  };
  const stackReady = (name: string) =>
    waitFor(async () => {
      const s = json(await h.app.inject({ url: `/v1/stacks/${name}`, headers: op }));
      return s.state === 'ready' && s.active_run === null ? s : null;
    }, `stack ${name} ready`);

  it('plans, applies, and a re-apply of the same file does nothing', async () => {
    const body = { source: 'lab-a', documents: [stackDoc('a1'), { name: 'a-solo', plan: 'ok' }] };
    expectProblem(await post('/v1/apply/plan', body, bearer('viewer')), 403, 'FORBIDDEN');
    const p = await plan(body);
    expect(p.items.map((i: { name: string; action: string }) => [i.name, i.action])).toEqual([
      ['a1', 'create'],
      ['a-solo', 'create'],
    ]);
    expect(JSON.stringify(p)).not.toContain('hunter2');
    expect(p.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const done = await apply(body);
    expect(done.started.map((s: { name: string; action: string }) => [s.name, s.action])).toEqual([
      ['a1', 'deploy'],
      ['a-solo', 'deploy'],
    ]);
    const s = await stackReady('a1');
    expect(s.labels['lifeline.source']).toBe('lab-a');
    const solo = await waitState(h.app, 'a-solo', 'ready', op);
    expect(solo.labels['lifeline.source']).toBe('lab-a');
    const again = await plan(body);
    expect(again.changes).toBe(false);
    expect(again.items.every((i: { action: string }) => i.action === 'unchanged')).toBe(true);
    const before = await snapshot(h.engine);
    const res = await apply(body);
    expect(res.started).toEqual([]);
    expect((await snapshot(h.engine)).digest).toBe(before.digest);
    // A params change: update with a field diff, then the unit redeployed.
    const changed = { ...body, documents: [stackDoc('a1', 2), body.documents[1]] };
    const up = await plan(changed);
    expect(up.items[0]).toMatchObject({
      action: 'update',
      changes: [{ path: 'spec.units[0].params.size', from: 1, to: 2 }],
      deploy: ['a1-net'],
    });
    await apply(changed);
    await waitFor(async () => (await plan(changed)).changes === false, 'a1 redeployed');
  });

  it('a write between plan and apply: 409 PLAN_STALE and nothing written', async () => {
    const body = { source: 'lab-b', documents: [stackDoc('b1'), { name: 'b-solo', plan: 'ok' }] };
    const p = await plan(body);
    // Someone else creates b-solo by hand after the plan was made.
    expect((await post('/v1/deployments', { name: 'b-solo', plan: 'ok' })).statusCode).toBe(201);
    // The last test's redeploy may still be writing: "nothing written" is measured on a still store.
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    expectProblem(await post('/v1/apply', { ...body, digest: p.digest }), 409, 'PLAN_STALE');
    expect(await snapshot(h.engine)).toEqual(before);
    expectProblem(await h.app.inject({ url: '/v1/stacks/b1', headers: op }), 404);
    // Other documents than the plan's: stale too.
    const p2 = await plan(body);
    const other = { ...body, documents: [stackDoc('b1', 3), body.documents[1]] };
    expectProblem(await post('/v1/apply', { ...other, digest: p2.digest }), 409, 'PLAN_STALE');
    expect((await snapshot(h.engine)).digest).toBe(before.digest);
  });

  it('prune: only this source, only with prune, never an empty file, capped by max_delete', async () => {
    await apply({
      source: 'lab-c',
      documents: [
        { name: 'c1', plan: 'ok' },
        { name: 'c2', plan: 'ok' },
        { name: 'c3', plan: 'ok' },
      ],
    });
    await apply({ source: 'lab-d', documents: [{ name: 'd1', plan: 'ok' }] });
    expect((await post('/v1/deployments', { name: 'c-hand', plan: 'ok' })).statusCode).toBe(201);
    for (const n of ['c1', 'c2', 'c3', 'd1']) await waitState(h.app, n, 'ready', op);
    const keep = { source: 'lab-c', documents: [{ name: 'c1', plan: 'ok' }] };
    expect((await plan(keep)).items).toHaveLength(1); // no prune: nothing removed
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    expectProblem(await post('/v1/apply/plan', { ...keep, prune: true, max_delete: 1 }), 409, 'PRUNE_LIMIT');
    expectProblem(
      await post('/v1/apply/plan', { source: 'lab-c', documents: [], prune: true }),
      422,
      'VALIDATION',
    );
    expect(await snapshot(h.engine)).toEqual(before);
    const pruning = { ...keep, prune: true };
    const p = await plan(pruning);
    expect(p.items.map((i: { name: string; action: string }) => [i.name, i.action])).toEqual([
      ['c1', 'unchanged'],
      ['c2', 'teardown'],
      ['c3', 'teardown'],
    ]);
    await apply(pruning);
    await waitState(h.app, 'c2', 'torn_down', op);
    await waitState(h.app, 'c3', 'torn_down', op);
    const del = await apply(pruning);
    expect(del.started.map((s: { name: string; action: string }) => [s.name, s.action])).toEqual([
      ['c2', 'delete'],
      ['c3', 'delete'],
    ]);
    expect((await h.app.inject({ url: '/v1/deployments/c2', headers: op })).statusCode).toBe(404);
    for (const n of ['c-hand', 'd1'])
      expect((await h.app.inject({ url: `/v1/deployments/${n}`, headers: op })).statusCode).toBe(200);
    expect((await plan(pruning)).changes).toBe(false);
  });

  it('an unknown object is blocked and never forced', async () => {
    await makeUnknown(h, 'e1', op);
    await h.engine.store.db
      .updateTable('deployments')
      .set({ labels: JSON.stringify({ 'lifeline.source': 'lab-e' }) })
      .where('name', '=', 'e1')
      .execute();
    const body = { source: 'lab-e', documents: [{ name: 'e1', plan: 'sleep', params: {} }] };
    const p = await plan(body);
    expect(p.items[0]).toMatchObject({ action: 'blocked', reason: expect.stringContaining('unknown') });
    expect(p.changes).toBe(false);
    const before = await snapshot(h.engine);
    const res = await apply(body);
    expect(res.started).toEqual([]);
    expect((await snapshot(h.engine)).digest).toBe(before.digest);
  });

  it('bad documents: a 422 naming the field, with a suggestion; the same object twice; another source', async () => {
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    let p = expectProblem(
      await post('/v1/apply/plan', { source: 'x', documents: [{ name: 'f1', plan: 'ok', param: {} }] }),
      422,
    );
    expect(p.errors).toContainEqual({
      field: 'documents[0].param',
      reason: 'unknown key (did you mean params?)',
    });
    p = expectProblem(
      await post('/v1/apply/plan', {
        source: 'x',
        documents: [{ name: 'f2', units: [{ key: 'a', plann: 'ok' }] }],
      }),
      422,
    );
    expect(p.errors).toContainEqual({
      field: 'documents[0].units[0].plann',
      reason: 'unknown key (did you mean plan?)',
    });
    // A stack whose `units` is misspelt reads as a deployment: the suggestion still points at units.
    p = expectProblem(
      await post('/v1/apply/plan', {
        source: 'x',
        documents: [
          { name: 'f5', unit: [{ key: 'a', plan: 'ok' }] },
          { name: 'f6', on_failure: 'stop' },
        ],
      }),
      422,
    );
    expect(p.errors).toContainEqual({
      field: 'documents[0].unit',
      reason: 'unknown key (did you mean units?)',
    });
    expect(p.errors).toContainEqual({
      field: 'documents[1].on_failure',
      reason: 'is a stack field, and this document has no units',
    });
    p = expectProblem(
      await post('/v1/apply/plan', { source: 'x', documents: [{ name: 'f3', plan: 'nope' }] }),
      422,
    );
    expect(p.errors?.[0].field).toBe('documents[0].plan');
    p = expectProblem(
      await post('/v1/apply/plan', {
        source: 'x',
        documents: [
          { name: 'f4', plan: 'ok' },
          { name: 'f4', plan: 'ok' },
        ],
      }),
      422,
    );
    expect(p.detail).toContain('same object twice');
    p = expectProblem(
      await post('/v1/apply/plan', { source: 'lab-z', documents: [{ name: 'd1', plan: 'ok' }] }),
      422,
    );
    expect(p.errors?.[0].field).toBe('source');
    expectProblem(await post('/v1/apply', { source: 'x', documents: [] }), 422, 'VALIDATION');
    expect(await snapshot(h.engine)).toEqual(before);
  });
});
