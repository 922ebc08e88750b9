// `lifeline rollback` against a real server: the target's params run again, --to, --follow's exit code,
// and a refusal is exit 2 with the problem code.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, cliPlans, ROOT, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;
const script = [path.join(ROOT, 'test/fixtures/plans/params-rc.sh')];

beforeAll(async () => {
  server = await TestServer.start({
    ...cliPlans(),
    versioned: {
      description: 'fails when its params say fail=true',
      deploy: script,
      teardown: script,
      params: {
        type: 'object',
        properties: { version: { type: 'string' }, fail: { type: 'boolean' } },
        additionalProperties: false,
      },
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

describe('lifeline rollback', () => {
  it('rolls back to the last succeeded params, with --follow and --to', async () => {
    expect((await cli(server, ['create', 'rb-1', '--plan', 'versioned', '--param', 'version=1'])).code).toBe(
      0,
    );
    expect((await cli(server, ['deploy', 'rb-1', '--follow'])).code).toBe(0);
    expect((await cli(server, ['deploy', 'rb-1', '--param', 'version=2', '--follow'])).code).toBe(0);
    const bad = await cli(server, [
      'deploy',
      'rb-1',
      '--param',
      'version=3',
      '--param',
      'fail=true',
      '--follow',
    ]);
    expect(bad.code).toBe(1);

    const r = await cli(server, ['rollback', 'rb-1', '--follow']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('"version":"2"');
    const atts = await server.api<{ items: any[] }>('GET', '/v1/deployments/rb-1/attempts');
    expect(atts.items[0]).toMatchObject({
      number: 4,
      state: 'succeeded',
      rollback_of: 2,
      params: { version: '2' },
    });

    const j = await cli(server, ['rollback', 'rb-1', '--to', '1', '--json']);
    expect(j.code, j.stderr).toBe(0);
    const att = JSON.parse(j.stdout);
    expect(att).toMatchObject({ number: 5, kind: 'deploy', rollback_of: 1, params: { version: '1' } });
  });

  it('NO_ROLLBACK_TARGET and bad --to are exit 2, and nothing is started', async () => {
    expect((await cli(server, ['create', 'rb-2', '--plan', 'versioned', '--param', 'fail=true'])).code).toBe(
      0,
    );
    expect((await cli(server, ['deploy', 'rb-2', '--follow'])).code).toBe(1);
    const r = await cli(server, ['rollback', 'rb-2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NO_ROLLBACK_TARGET/);
    const u = await cli(server, ['rollback', 'rb-2', '--to', 'x']);
    expect(u.code).toBe(2);
    const atts = await server.api<{ items: any[] }>('GET', '/v1/deployments/rb-2/attempts');
    expect(atts.items).toHaveLength(1);
  });
});
