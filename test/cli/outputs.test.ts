// `lifeline show` prints a deployment's outputs (SPEC §12.1) against a real server: each key with its
// value as JSON (a plan's control characters escaped), secret param values masked; --json has them too.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, cliPlans, ROOT, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;
const script = [path.join(ROOT, 'test/fixtures/plans/outputs.sh')];

beforeAll(async () => {
  server = await TestServer.start({
    ...cliPlans(),
    out: {
      deploy: script,
      teardown: script,
      params: {
        type: 'object',
        properties: { lines: { type: 'array' }, token: { type: 'string', writeOnly: true } },
        additionalProperties: false,
      },
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

describe('lifeline show: outputs', () => {
  it('prints the outputs, masked and escaped', async () => {
    const lines = [
      {
        output: {
          url: 'http://127.0.0.1:8080/',
          vlan: 107,
          db: 'pg://app:$TOKEN@db',
          'odd key': '\u001b[31mred\u009b',
        },
      },
    ];
    await server.api('POST', '/v1/deployments', {
      name: 'outs',
      plan: 'out',
      params: { lines, token: 'tok-s3cret' },
    });
    expect((await cli(server, ['deploy', 'outs', '--follow'])).code).toBe(0);
    const r = await cli(server, ['show', 'outs']);
    expect(r.code, r.stderr).toBe(0);
    const section = r.stdout.slice(r.stdout.indexOf('Outputs'), r.stdout.indexOf('Timeline'));
    expect(section.split('\n').map((l) => l.trim().split(/\s{2,}/))).toEqual([
      ['Outputs'],
      ['KEY', 'VALUE'],
      ['url', '"http://127.0.0.1:8080/"'],
      ['vlan', '107'],
      ['db', '"pg://app:***@db"'],
      ['"odd key"', '"\\u001b[31mred\\u009b"'],
      [''],
      [''],
    ]);
    expect(r.stdout).not.toContain('tok-s3cret');
    expect(r.stdout).not.toContain('\u001b[31m');
    const j = await cli(server, ['show', 'outs', '--json']);
    expect(JSON.parse(j.stdout).outputs).toEqual({
      url: 'http://127.0.0.1:8080/',
      vlan: 107,
      db: 'pg://app:***@db',
      'odd key': '\u001b[31mred\u009b',
    });
  });

  it('prints no Outputs section when there are none', async () => {
    await server.api('POST', '/v1/deployments', { name: 'none', plan: 'out', params: {} });
    expect((await cli(server, ['deploy', 'none', '--follow'])).code).toBe(0);
    const r = await cli(server, ['show', 'none']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('Outputs');
  });
});
