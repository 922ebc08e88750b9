// The lifeline.* labels of applied objects survive hand writes (docs/reference/apply.md "Hand edits"), on
// both stores: a PUT of an applied stack keeps lifeline.source (so its file's prune still knows it and
// another source cannot adopt it), a spec cannot set it, and a hand create cannot claim a source.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, waitFor } from '../helpers/engine.ts';
import { bearer, expectProblem, harness, json, snapshot, type Harness } from './helpers.ts';

const op = bearer('operator');

const spec = (name: string, size: number, labels: Record<string, string> = {}) => ({
  name,
  labels,
  units: [{ key: 'net', plan: 'ok', params: { size } }],
});

describe.each(DIALECTS)('applied labels on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ dialect, auth: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  const send = (method: 'POST' | 'PUT', url: string, payload: unknown) =>
    h.app.inject({ method, url, payload: payload as never, headers: op });
  const plan = async (body: Record<string, unknown>) => {
    const res = await send('POST', '/v1/apply/plan', body);
    expect(res.statusCode, res.body).toBe(200);
    return json(res);
  };
  const getStack = async (name: string) =>
    json(await h.app.inject({ url: `/v1/stacks/${name}`, headers: op }));

  it('a hand PUT of an applied stack keeps lifeline.source: prune still finds it, another source cannot take it', async () => {
    const file = { source: 'lab-p', documents: [spec('p1', 1)] };
    const p = await plan(file);
    expect((await send('POST', '/v1/apply', { ...file, digest: p.digest })).statusCode).toBe(200);
    await waitFor(async () => {
      const s = await getStack('p1');
      return s.state === 'ready' && s.active_run === null;
    }, 'p1 ready');

    // By hand: another size and a label of its own, without lifeline.source (a spec cannot name it).
    const put = await send('PUT', '/v1/stacks/p1', spec('p1', 2, { team: 'blue' }));
    expect(put.statusCode, put.body).toBe(200);
    expect(json(put).labels).toEqual({ team: 'blue', 'lifeline.source': 'lab-p' });
    expect((await getStack('p1')).labels).toEqual({ team: 'blue', 'lifeline.source': 'lab-p' });

    // The file's next plan shows the hand change as an update back to the file, not an adoption.
    const back = await plan(file);
    expect(back.items[0]).toMatchObject({ name: 'p1', action: 'update' });
    expect(back.items[0].changes).toEqual(
      expect.arrayContaining([
        { path: 'spec.units[0].params.size', from: 2, to: 1 },
        { path: 'labels.team', from: 'blue' },
      ]),
    );
    expect(back.items[0].changes.map((c: { path: string }) => c.path)).not.toContain(
      'labels.lifeline.source',
    );
    // Dropped from the file: its prune still knows p1 is its own.
    const pruned = await plan({ source: 'lab-p', documents: [{ name: 'p-other', plan: 'ok' }], prune: true });
    expect(pruned.items.map((i: { name: string; action: string }) => [i.name, i.action])).toContainEqual([
      'p1',
      'teardown',
    ]);
    // Another source naming it is refused, as before the hand edit.
    const other = expectProblem(
      await send('POST', '/v1/apply/plan', { source: 'lab-q', documents: [spec('p1', 1)] }),
      422,
      'VALIDATION',
    );
    expect(other.errors?.[0].field).toBe('source');
  });

  it('a spec or a hand create that sets a lifeline.* label is refused, nothing written', async () => {
    const before = await snapshot(h.engine);
    const stackBefore = await getStack('p1');
    let p = expectProblem(
      await send('PUT', '/v1/stacks/p1', spec('p1', 2, { 'lifeline.source': 'lab-q' })),
      422,
      'VALIDATION',
    );
    expect(p.errors).toContainEqual({
      field: 'labels.lifeline.source',
      reason: 'lifeline.* labels are set by Lifeline',
    });
    p = expectProblem(
      await send('POST', '/v1/deployments', {
        name: 'hand-1',
        plan: 'ok',
        labels: { 'lifeline.source': 'lab-p' },
      }),
      422,
      'VALIDATION',
    );
    expect(p.errors).toEqual([
      { field: 'labels.lifeline.source', reason: 'lifeline.* labels are set by Lifeline' },
    ]);
    expect(await snapshot(h.engine)).toEqual(before);
    expect(await getStack('p1')).toEqual(stackBefore);
  });
});
