// Rollback (SPEC §9.2) through the HTTP API with real plan processes: the target's params, rollback_of,
// NO_ROLLBACK_TARGET, the deploy guards, and that a refused rollback writes nothing.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, fixturePlans } from '../helpers/engine.ts';
import {
  bearer,
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

let h: Harness;
const op = bearer('operator');
const admin = bearer('admin');

beforeAll(async () => {
  const script = [path.join(FIXTURES, 'params-rc.sh')];
  const plans = {
    ...fixturePlans(),
    versioned: {
      deploy: script,
      teardown: script,
      params: {
        type: 'object',
        properties: {
          version: { type: 'string' },
          fail: { type: 'boolean' },
          hang: { type: 'boolean' },
          token: { type: 'string', writeOnly: true },
        },
        additionalProperties: false,
      },
    },
  };
  h = await harness({ auth: true, extra: { plans } });
});
afterAll(async () => h?.close());

async function create(name: string, params: Record<string, unknown>) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/deployments',
    headers: op,
    payload: { name, plan: 'versioned', params },
  });
  expect(res.statusCode, res.body).toBe(201);
}

/** Starts a deploy attempt (with `params` merged in) and waits for its end. */
async function deploy(name: string, params: Record<string, unknown> = {}) {
  const res = await h.app.inject({
    method: 'POST',
    url: `/v1/deployments/${name}/attempts`,
    headers: op,
    payload: { params },
  });
  expect(res.statusCode, res.body).toBe(202);
  return waitAttempt(h.app, json(res).id, (a) => !['queued', 'running'].includes(a.state), op);
}

function rollback(name: string, body?: unknown, headers = op) {
  return h.app.inject({
    method: 'POST',
    url: `/v1/deployments/${name}/rollback`,
    headers,
    payload: body as object,
  });
}

async function paramsOfRun(attemptId: string): Promise<string> {
  const log = await h.app.inject({ url: `/v1/attempts/${attemptId}/log`, headers: op });
  return log.body;
}

describe('POST /v1/deployments/{ref}/rollback', () => {
  it('after a failed deploy with new params, runs the params of the last succeeded deploy', async () => {
    await create('rb-1', { version: '1', token: 's3cret-one' });
    expect((await deploy('rb-1')).state).toBe('succeeded'); // #1 v1
    expect((await deploy('rb-1', { version: '2' })).state).toBe('succeeded'); // #2 v2
    const bad = await deploy('rb-1', { version: '3', fail: true }); // #3 v3 fails
    expect(bad.state).toBe('failed');
    await waitState(h.app, 'rb-1', 'failed', op);

    const res = await rollback('rb-1');
    expect(res.statusCode, res.body).toBe(202);
    const att = json(res);
    expect(res.headers.location).toBe(`/v1/attempts/${att.id}`);
    expect(att).toMatchObject({ number: 4, kind: 'deploy', rollback_of: 2, requested_by: 'ci' });
    // The API masks the secret; the process got the real params of attempt 2.
    expect(att.params).toEqual({ version: '2', token: '***' });
    const done = await waitAttempt(h.app, att.id, (a) => a.state === 'succeeded', op);
    expect(done.rollback_of).toBe(2);
    expect(await paramsOfRun(att.id)).toContain('"version":"2"');
    expect(await paramsOfRun(att.id)).not.toContain('"fail":true');
    const dep = await waitState(h.app, 'rb-1', 'ready', op);
    expect(dep.params).toEqual({ version: '2', token: '***' });

    // The current attempt (#4) succeeded: the target is now the one before it, #2 again.
    const again = json(await rollback('rb-1'));
    expect(again.rollback_of).toBe(2);
    await waitAttempt(h.app, again.id, (a) => a.state === 'succeeded', op);

    // `to` picks an older succeeded deploy; other attempts are not deploys that may be picked.
    const to1 = json(await rollback('rb-1', { to: 1 }));
    expect(to1).toMatchObject({ rollback_of: 1, params: { version: '1', token: '***' } });
    await waitAttempt(h.app, to1.id, (a) => a.state === 'succeeded', op);
    expect(await paramsOfRun(to1.id)).toContain('"version":"1"');
    // A plain deploy is no rollback.
    expect((await deploy('rb-1')).rollback_of).toBeNull();
    await quiesce(h.engine);
  });

  it('409 NO_ROLLBACK_TARGET on a deployment that never succeeded, or a `to` that is no succeeded deploy', async () => {
    await create('rb-2', { fail: true });
    expect((await deploy('rb-2')).state).toBe('failed');
    await create('rb-3', {});
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    expectProblem(await rollback('rb-2'), 409, 'NO_ROLLBACK_TARGET');
    expectProblem(await rollback('rb-2', { to: 1 }), 409, 'NO_ROLLBACK_TARGET'); // failed
    expectProblem(await rollback('rb-2', { to: 99 }), 409, 'NO_ROLLBACK_TARGET'); // none
    expectProblem(await rollback('rb-3'), 409, 'NO_ROLLBACK_TARGET'); // pending, no attempt at all
    expect(await snapshot(h.engine)).toEqual(before);
  });

  it('bad input is 4xx and changes nothing; viewers and non-admin force are refused', async () => {
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    expectProblem(await rollback('rb-1', { to: 0 }), 422, 'VALIDATION');
    expectProblem(await rollback('rb-1', { to: 'two' }), 422, 'VALIDATION');
    expectProblem(await rollback('rb-1', { extra: true }), 422, 'VALIDATION');
    expectProblem(await rollback('nope'), 404, 'NOT_FOUND');
    expectProblem(await rollback('rb-1', {}, bearer('viewer')), 403, 'FORBIDDEN');
    expectProblem(await rollback('rb-1', { force: true }), 403, 'FORBIDDEN');
    const stale = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments/rb-1/rollback',
      headers: { ...op, 'if-match': '"1"' },
    });
    expectProblem(stale, 412, 'VERSION_MISMATCH');
    expect(await snapshot(h.engine)).toEqual(before);
  });

  it('guards as for deploy: busy is ATTEMPT_IN_PROGRESS; unknown refuses without admin force', async () => {
    const { readProcess, readSupervisor } = await import('../../src/runner/rundir.ts');
    await create('rb-4', { version: '1' });
    expect((await deploy('rb-4')).state).toBe('succeeded');
    const hang = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments/rb-4/attempts',
      headers: op,
      payload: { params: { version: '2', hang: true } },
    });
    const running = await waitAttempt(h.app, json(hang).id, (a) => a.state === 'running', op);
    let before = await snapshot(h.engine);
    expectProblem(await rollback('rb-4'), 409, 'ATTEMPT_IN_PROGRESS');
    expect(await snapshot(h.engine)).toEqual(before);

    // Lose the outcome: kill the plan and its supervisor, the deployment becomes unknown.
    const runDir = path.join(h.config.dataDir, 'attempts', running.id);
    process.kill(-readSupervisor(runDir)!.pid, 'SIGKILL');
    process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
    await waitState(h.app, 'rb-4', 'unknown', op);
    await quiesce(h.engine);
    before = await snapshot(h.engine);
    expectProblem(await rollback('rb-4'), 409, 'DEPLOYMENT_UNKNOWN_STATE');
    expectProblem(await rollback('rb-4', { force: true }), 403, 'FORBIDDEN');
    expect(await snapshot(h.engine)).toEqual(before);

    const forced = await rollback('rb-4', { force: true }, admin);
    expect(forced.statusCode, forced.body).toBe(202);
    expect(json(forced)).toMatchObject({ rollback_of: 1, force: true, params: { version: '1' } });
    await waitAttempt(h.app, json(forced).id, (a) => a.state === 'succeeded', op);
    await waitState(h.app, 'rb-4', 'ready', op);
  });

  it('a never-succeeded unknown deployment forced by an admin still needs a target', async () => {
    await makeUnknown(h, 'rb-5', op);
    await quiesce(h.engine);
    const before = await snapshot(h.engine);
    expectProblem(await rollback('rb-5', { force: true }, admin), 409, 'NO_ROLLBACK_TARGET');
    expect(await snapshot(h.engine)).toEqual(before);
  });
});
