// GET /v1/attempts/{id}/phases (SPEC §9.4) with a real plan writing runner events: phases in order, the
// last ending with the attempt, only that attempt's events, and 404 for an unknown attempt.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, harness, json, quiesce, waitAttempt, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => h?.close());

async function deployed(name: string, plan: string) {
  await h.app.inject({ method: 'POST', url: '/v1/deployments', payload: { name, plan } });
  const res = await h.app.inject({ method: 'POST', url: `/v1/deployments/${name}/attempts` });
  expect(res.statusCode, res.body).toBe(202);
  return waitAttempt(h.app, json(res).id, (a) => a.state === 'succeeded');
}

describe('GET /v1/attempts/{id}/phases', () => {
  it("folds the attempt's runner events into phases that end with the attempt", async () => {
    const a = await deployed('ph-1', 'events');
    await quiesce(h.engine);
    const res = await h.app.inject({ url: `/v1/attempts/${a.id}/phases` });
    expect(res.statusCode, res.body).toBe(200);
    const { items } = json(res);
    expect(items.map((p: any) => p.phase)).toEqual(['plan', 'apply']);
    expect(items[0].ended_at).toBe(items[1].started_at);
    // The last phase ends with the attempt (or where it started, when its event was read after the end).
    expect(Date.parse(items[1].ended_at)).toBe(
      Math.max(Date.parse(a.ended_at), Date.parse(items[1].started_at)),
    );
    for (const p of items) {
      expect(p.duration_ms).toBe(Date.parse(p.ended_at) - Date.parse(p.started_at));
      expect(p.duration_ms).toBeGreaterThanOrEqual(0);
    }
    // A second attempt's phases are its own; the first one's stay as they were.
    const second = json(await h.app.inject({ method: 'POST', url: '/v1/deployments/ph-1/attempts' }));
    const b = await waitAttempt(h.app, second.id, (x) => x.state === 'succeeded');
    await quiesce(h.engine);
    expect(json(await h.app.inject({ url: `/v1/attempts/${b.id}/phases` })).items).toHaveLength(2);
    expect(json(await h.app.inject({ url: `/v1/attempts/${a.id}/phases` })).items).toEqual(items);
  });

  it('is empty for a plan that writes no phases, 404 for an unknown attempt', async () => {
    const a = await deployed('ph-2', 'ok');
    expect(json(await h.app.inject({ url: `/v1/attempts/${a.id}/phases` }))).toEqual({ items: [] });
    expectProblem(await h.app.inject({ url: '/v1/attempts/att_nope/phases' }), 404, 'NOT_FOUND');
  });
});
