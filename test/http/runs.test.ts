// Stack runs through the HTTP API on both stores (SPEC §12.5): 202 Run with Location, the refusals
// (400 confirm mismatch, 403 force without admin, 404, 409 STACK_RUN_IN_PROGRESS / NO_ACTIVE_RUN,
// 422 naming the field) writing nothing, runs newest first, one run with its steps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, waitFor } from '../helpers/engine.ts';
import { bearer, expectProblem, harness, json, type Harness } from './helpers.ts';

const op = bearer('operator');
const admin = bearer('admin');
const viewer = bearer('viewer');

describe.each(DIALECTS)('stack run routes on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ auth: true, dialect });
    await h.engine.createStack(
      {
        name: 'web',
        units: [
          { key: 'db', plan: 'short' },
          { key: 'app', plan: 'short', after: ['db'], count: 2 },
        ],
      },
      { name: 'ci', role: 'operator' },
    );
  });
  afterAll(async () => {
    await h.close();
  });

  const post = (url: string, headers: Record<string, string>, payload?: unknown) =>
    h.app.inject({
      method: 'POST',
      url,
      headers,
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
  const runsOf = async () =>
    json(await h.app.inject({ method: 'GET', url: '/v1/stacks/web/runs', headers: viewer })).items;
  const waitEnd = (id: string) =>
    waitFor(async () => {
      const r = json(await h.app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: viewer }));
      return r.state !== 'queued' && r.state !== 'running' ? r : null;
    }, `run ${id} to end`);

  it('refuses bad requests with a problem naming the field, writing nothing', async () => {
    expectProblem(await post('/v1/stacks/web/deploy', viewer, {}), 403, 'FORBIDDEN');
    expectProblem(await post('/v1/stacks/web/deploy', op, { force: true }), 403, 'FORBIDDEN');
    const bad = expectProblem(
      await post('/v1/stacks/web/deploy', op, { units: ['nope'] }),
      422,
      'VALIDATION',
    );
    expect(bad.errors).toEqual([{ field: 'units[0]', reason: 'no unit has the key "nope"' }]);
    const units = expectProblem(await post('/v1/stacks/web/deploy', op, { units: 'db' }), 422, 'VALIDATION');
    expect(units.errors?.[0].field).toBe('units');
    expectProblem(await post('/v1/stacks/web/deploy', op, { extra: 1 }), 422, 'VALIDATION');
    expectProblem(
      await post('/v1/stacks/web/teardown', op, { confirm: 'other' }),
      400,
      'TEARDOWN_CONFIRM_MISMATCH',
    );
    const confirm = expectProblem(await post('/v1/stacks/web/teardown', op, {}), 422, 'VALIDATION');
    expect(confirm.errors?.[0].field).toBe('confirm');
    expectProblem(await post('/v1/stacks/nope/deploy', op, {}), 404, 'NOT_FOUND');
    expectProblem(await post('/v1/stacks/web/cancel', op), 409, 'NO_ACTIVE_RUN');
    expectProblem(
      await h.app.inject({ method: 'GET', url: '/v1/runs/run_nope', headers: viewer }),
      404,
      'NOT_FOUND',
    );
    expect(await runsOf()).toEqual([]);
  });

  it('deploys (202 Run, Location), one run at a time, then tears down in reverse', async () => {
    const res = await post('/v1/stacks/web/deploy', op);
    expect(res.statusCode, res.body).toBe(202);
    const run = json(res);
    expect(res.headers.location).toBe(`/v1/runs/${run.id}`);
    expect(run).toMatchObject({
      kind: 'deploy',
      stack: 'web',
      actor: 'ci',
      state: 'queued',
      on_failure: 'stop',
    });
    expect(run.steps.map((s: { deployment: string; step: string }) => [s.deployment, s.step])).toEqual([
      ['web-db', 'waiting'],
      ['web-app-1', 'waiting'],
      ['web-app-2', 'waiting'],
    ]);
    expectProblem(await post('/v1/stacks/web/deploy', op, {}), 409, 'STACK_RUN_IN_PROGRESS');
    expectProblem(
      await post('/v1/deployments/web-db/teardown', op, { confirm: 'web-db' }),
      409,
      'STACK_RUN_IN_PROGRESS',
    );
    const done = await waitEnd(run.id);
    expect(done.state).toBe('succeeded');
    expect(
      done.steps.every((s: { step: string; attempt_id: string }) => s.step === 'succeeded' && s.attempt_id),
    ).toBe(true);
    const down = json(await post('/v1/stacks/web/teardown', admin, { confirm: 'web' }));
    expect(down.kind).toBe('teardown');
    expect((await waitEnd(down.id)).state).toBe('succeeded');
    const db = json(await h.app.inject({ method: 'GET', url: '/v1/deployments/web-db', headers: viewer }));
    expect(db.state).toBe('torn_down');
    expect((await runsOf()).map((r: { id: string }) => r.id)).toEqual([down.id, run.id]);
    const page = json(
      await h.app.inject({ method: 'GET', url: '/v1/stacks/web/runs?limit=1', headers: viewer }),
    );
    expect(page.items.map((r: { id: string }) => r.id)).toEqual([down.id]);
    expect(page.next_cursor).toBe(down.id);
  });
});
