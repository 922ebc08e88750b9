// `lifeline show` on a deployment with an automatic retry waiting (SPEC §9.1), against a real server;
// and the countdown text itself.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { countdown, retryText, timeOfDay } from '../../src/cli/client/format.ts';
import { cli, cliPlans, ROOT, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start({
    ...cliPlans(),
    later: {
      description: 'always fails; retries far away',
      deploy: [path.join(ROOT, 'test/fixtures/plans/fail.sh')],
      teardown: [path.join(ROOT, 'test/fixtures/plans/ok.sh')],
      retry: { max: 3, backoff: '20d' },
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

describe('retry in lifeline show', () => {
  it('prints which retry comes, when, and in how long; --json carries the retry object', async () => {
    expect((await cli(server, ['create', 'rt-1', '--plan', 'later'])).code).toBe(0);
    expect((await cli(server, ['deploy', 'rt-1', '--follow'])).code).toBe(1);
    const json = JSON.parse((await cli(server, ['show', 'rt-1', '--json'])).stdout);
    expect(json.retry).toMatchObject({ number: 1, of: 3 });
    const r = await cli(server, ['show', 'rt-1']);
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => /^\s+retry\s/.test(l));
    expect(line).toMatch(new RegExp(`^\\s+retry\\s+1/3 at ${timeOfDay(json.retry.at)} \\(in \\d`));
    // Once cancelled, the line is gone.
    const cancel = await cli(server, ['cancel', 'rt-1']);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(
      /^cancelled the automatic retry of rt-1 that waited after deploy attempt #1 /,
    );
    expect((await cli(server, ['show', 'rt-1'])).stdout).not.toMatch(/^\s+retry\s/m);
  });
});

describe('retry text', () => {
  it('counts down in seconds, then minutes, hours and days', () => {
    expect([999, 28_000, 59_500, 185_000, 7_620_000, 273_600_000].map(countdown)).toEqual([
      '1s',
      '28s',
      '1m 00s',
      '3m 05s',
      '2h 07m',
      '3d 04h',
    ]);
  });

  it('says the retry, its local time and the time left, or that it is due', () => {
    const at = '2026-11-30T12:34:56.000Z';
    const now = Date.parse(at) - 28_000;
    expect(retryText({ number: 2, of: 3, at }, now)).toBe(`retry 2/3 at ${timeOfDay(at)} (in 28s)`);
    expect(retryText({ number: 2, of: 3, at }, Date.parse(at) + 1)).toBe(
      `retry 2/3 at ${timeOfDay(at)} (due now)`,
    );
  });
});
