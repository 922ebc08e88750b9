// Outputs through the HTTP API (SPEC §12.1) on both stores: the deployment (one and the list), its
// attempts, the events and a stack's read of its units show them, as the OpenAPI schema says; an
// operator's resolve to torn_down of an `unknown` deployment clears them with outputs_changed, in the
// resolve's own transaction.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, FIXTURES, fixturePlans, type TestDialect } from '../helpers/engine.ts';
import { expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { bearer, harness, json, waitAttempt, waitState, type Harness } from './helpers.ts';

const admin = bearer('admin');
const viewer = bearer('viewer');

describe.each(DIALECTS)('outputs over HTTP on %s', (dialect: TestDialect) => {
  let h: Harness;
  beforeAll(async () => {
    const script = [path.join(FIXTURES, 'outputs.sh')];
    const plans = {
      ...fixturePlans(),
      out: {
        deploy: script,
        teardown: script,
        params: {
          type: 'object',
          properties: {
            lines: { type: 'array' },
            hold: { type: 'number' },
            token: { type: 'string', writeOnly: true },
          },
          additionalProperties: false,
        },
      },
    };
    h = await harness({ auth: true, dialect, extra: { plans } });
  });
  afterAll(async () => h?.close());

  const get = async (url: string) => {
    const res = await h.app.inject({ method: 'GET', url, headers: viewer });
    expect(res.statusCode, res.body).toBe(200);
    return json(res);
  };
  const post = async (url: string, payload: unknown, status: number) => {
    const res = await h.app.inject({ method: 'POST', url, headers: admin, payload: payload as object });
    expect(res.statusCode, res.body).toBe(status);
    return json(res);
  };

  it('GET deployment, the list, the attempt and the events show the outputs; resolve to torn_down clears them', async () => {
    const want = { url: 'http://10.7.0.1/', vlan: 107, db: 'pg://***@db' };
    await post(
      '/v1/deployments',
      {
        name: 'web',
        plan: 'out',
        params: {
          token: 'tok-abc-123',
          lines: [{ output: { url: 'http://10.7.0.1/', vlan: 107, db: 'pg://$TOKEN@db' } }],
        },
      },
      201,
    );
    const att = await post('/v1/deployments/web/attempts', {}, 202);
    expect(att.outputs).toEqual({});
    await waitState(h.app, 'web', 'ready', admin);
    const dep = await get('/v1/deployments/web');
    expect(dep.outputs).toEqual(want);
    expect((await get('/v1/deployments?limit=10')).items.find((d: any) => d.name === 'web').outputs).toEqual(
      want,
    );
    expect((await get(`/v1/attempts/${att.id}`)).outputs).toEqual(want);
    expect((await get('/v1/deployments/web/attempts')).items[0].outputs).toEqual(want);
    const ev = await get(`/v1/events?type=outputs_changed&deployment=web`);
    expect(ev.items.map((e: any) => [e.attempt_id, e.data])).toEqual([[att.id, { outputs: want }]]);
    const raw = await h.app.inject({ method: 'GET', url: '/v1/deployments/web', headers: viewer });
    expect(raw.body).not.toContain('tok-abc-123');

    // A deploy whose outcome is lost: the deployment is `unknown`, its outputs still the last success's.
    const lost = await post('/v1/deployments/web/attempts', { params: { hold: 60, lines: [] } }, 202);
    await waitAttempt(h.app, lost.id, (a) => a.state === 'running', admin);
    const runDir = path.join(h.config.dataDir, 'attempts', lost.id);
    await waitState(h.app, 'web', 'deploying', admin);
    process.kill(-readSupervisor(runDir)!.pid, 'SIGKILL');
    process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
    await waitState(h.app, 'web', 'unknown', admin);
    expect((await get('/v1/deployments/web')).outputs).toEqual(want);

    const resolved = await post(
      '/v1/deployments/web/resolve',
      { state: 'torn_down', reason: 'removed by hand' },
      200,
    );
    expect([resolved.state, resolved.outputs]).toEqual(['torn_down', {}]);
    const after = await get(`/v1/events?type=outputs_changed,state_transition&deployment=web`);
    const last = after.items.slice(-2).map((e: any) => [e.type, e.data.outputs ?? e.data.to]);
    expect(last).toEqual([
      ['state_transition', 'torn_down'],
      ['outputs_changed', {}],
    ]);
    expectStoreInvariants(await snapshotOf(h.engine.store.db));
  }, 60_000);

  it("a stack's read shows each unit as the unit deployment's own read does: state, current attempt, masked outputs", async () => {
    await post(
      '/v1/stacks',
      {
        name: 'os',
        units: [
          {
            key: 'db',
            plan: 'out',
            params: { token: 'tok-s3cret', lines: [{ output: { dsn: 'pg://$TOKEN@db' } }] },
          },
          {
            key: 'web',
            plan: 'out',
            count: 2,
            params: { lines: [{ output: { url: 'http://w/' } }] },
            after: ['db'],
          },
          { key: 'quiet', plan: 'out', after: ['db'] },
        ],
      },
      201,
    );
    const sameAsDeployments = async () => {
      const raw = await h.app.inject({ method: 'GET', url: '/v1/stacks/os', headers: viewer });
      expect(raw.body).not.toContain('tok-s3cret');
      const units = json(raw).units as any[];
      expect(units.map((u) => u.deployment)).toEqual(['os-db', 'os-web-1', 'os-web-2', 'os-quiet']);
      for (const u of units) {
        const d = await get(`/v1/deployments/${u.deployment}`);
        expect([u.deployment_id, u.state, u.current_attempt, u.outputs]).toEqual([
          d.id,
          d.state,
          d.current_attempt,
          d.outputs,
        ]);
      }
      return units;
    };
    expect((await sameAsDeployments()).map((u) => u.current_attempt)).toEqual([null, null, null, null]);
    await post('/v1/stacks/os/deploy', {}, 202);
    for (const u of ['os-db', 'os-web-1', 'os-web-2', 'os-quiet']) await waitState(h.app, u, 'ready', admin);
    const ready = await sameAsDeployments();
    expect(ready[0].outputs).toEqual({ dsn: 'pg://***@db' });
    expect(ready[1].outputs).toEqual({ url: 'http://w/' });
    expect(ready[3].outputs).toEqual({});

    // A unit deployed again on its own: the stack shows its running attempt, the old outputs until it ends.
    const again = await post('/v1/deployments/os-web-2/attempts', { params: { hold: 60, lines: [] } }, 202);
    await waitAttempt(h.app, again.id, (a) => a.state === 'running', admin);
    const running = await sameAsDeployments();
    expect(running[2].current_attempt).toMatchObject({ id: again.id, kind: 'deploy', state: 'running' });
    await post(`/v1/deployments/os-web-2/cancel`, {}, 202);
    await waitAttempt(h.app, again.id, (a) => a.state === 'cancelled', admin);
    await sameAsDeployments();
  }, 60_000);
});
