// DELETE honours Idempotency-Key like the POSTs (SPEC §6, issue 9 item 9): a retried delete gets the
// first 204 again instead of a 404, and the same key with another query string (force) is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectProblem, harness, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await harness();
});
afterAll(async () => {
  await h?.close();
});

describe('DELETE with Idempotency-Key', () => {
  it('a retry replays the 204, runs nothing, and another query string with the same key is 422', async () => {
    const created = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      payload: { name: 'gone', plan: 'ok' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const key = { 'idempotency-key': 'del-1' };
    const first = await h.app.inject({ method: 'DELETE', url: '/v1/deployments/gone', headers: key });
    expect(first.statusCode, first.body).toBe(204);
    const events = (await h.engine.listEvents({ limit: 1000 })).items.length;

    const retry = await h.app.inject({ method: 'DELETE', url: '/v1/deployments/gone', headers: key });
    expect(retry.statusCode, retry.body).toBe(204);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect((await h.engine.listEvents({ limit: 1000 })).items.length).toBe(events);

    const forced = await h.app.inject({
      method: 'DELETE',
      url: '/v1/deployments/gone?force=true',
      headers: key,
    });
    expectProblem(forced, 422, 'VALIDATION');

    // Without a key a repeat is what it always was: the deployment is gone.
    expectProblem(await h.app.inject({ method: 'DELETE', url: '/v1/deployments/gone' }), 404);
  });
});
