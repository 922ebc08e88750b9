// `lifeline freeze ls|add|lift` against a real server (SPEC §13.2).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, cliPlans, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

let server: TestServer;
beforeAll(async () => {
  server = await TestServer.start(cliPlans(), {
    freezes: [{ name: 'exam-week', match: { plans: ['ok'] }, until: '2999-01-01T00:00:00Z' }],
  });
});
afterAll(async () => server?.stop());

describe('lifeline freeze', () => {
  it('add, ls (text and --json), lift', async () => {
    const add = await cli(server, [
      'freeze',
      'add',
      'maint',
      '--until',
      '2998-06-01T00:00:00Z',
      '--reason',
      'rack move',
      '--plan',
      'ok',
      '--plan',
      'fail',
      '--label',
      'team=web',
      '--kind',
      'teardown',
      '--reject',
    ]);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('froze maint until 2998-06-01');
    expect(add.stdout).toContain('(reject)');

    const ls = await cli(server, ['freeze', 'ls']);
    expect(ls.code).toBe(0);
    const lines = ls.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+NOW\s+WHEN\s+FROM\s+UNTIL\s+MATCH\s+BY/);
    expect(lines[1]).toMatch(/^exam-week\s+in force\s+queue\s+-\s+.*plans=ok\s+config file/);
    expect(lines[2]).toMatch(
      /^maint\s+in force\s+reject\s+.*plans=ok,fail kinds=teardown team=web\s+anonymous: rack move/,
    );

    const json = JSON.parse((await cli(server, ['freeze', 'ls', '--json'])).stdout);
    expect(json.items[1]).toMatchObject({
      name: 'maint',
      source: 'api',
      match: { plans: ['ok', 'fail'], labels: { team: 'web' }, kinds: ['teardown'] },
      when: 'reject',
      in_force: true,
    });

    const lift = await cli(server, ['freeze', 'lift', 'maint']);
    expect(lift.code).toBe(0);
    expect(lift.stdout.trim()).toBe('lifted maint');
    const after = JSON.parse((await cli(server, ['freeze', 'ls', '--json'])).stdout);
    expect(after.items.map((f: { name: string }) => f.name)).toEqual(['exam-week']);
  });

  it('refusals are the server’s problem, exit 2: a past until, a config freeze, an unknown name', async () => {
    const past = await cli(server, [
      'freeze',
      'add',
      'x',
      '--until',
      '2020-01-01T00:00:00Z',
      '--reason',
      'r',
    ]);
    expect(past.code).toBe(2);
    expect(past.stderr).toMatch(/VALIDATION.*until.*not in the future/);
    const cfg = await cli(server, ['freeze', 'lift', 'exam-week']);
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toMatch(/INVALID_TRANSITION.*config file/);
    const none = await cli(server, ['freeze', 'lift', 'nope']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/NOT_FOUND/);
    const missing = await cli(server, ['freeze', 'add', 'x', '--reason', 'r']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--until <time>' not specified");
  });
});
