// `lifeline show` on a deployment with an automatic retry waiting (SPEC §9.1), against a real server;
// and the countdown text itself.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { countdown, retryText, timeOfDay } from '../../src/cli/client/format.ts';
import { cli, cliPlans, ROOT, TestServer, waitFor } from './helpers.ts';

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
    soon: {
      description: 'always fails; one retry at once',
      deploy: [path.join(ROOT, 'test/fixtures/plans/fail.sh')],
      teardown: [path.join(ROOT, 'test/fixtures/plans/ok.sh')],
      retry: { max: 1, backoff: '1ms' },
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

describe('retry in lifeline show', () => {
  it('prints which retry comes, when, and in how long; --json carries the retry object', async () => {
    expect((await cli(server, ['create', 'rt-1', '--plan', 'later'])).code).toBe(0);
    const followed = await cli(server, ['deploy', 'rt-1', '--follow']);
    expect(followed.code).toBe(1);
    const json = JSON.parse((await cli(server, ['show', 'rt-1', '--json'])).stdout);
    expect(json.retry).toMatchObject({ number: 1, of: 3 });
    // The follow ended saying that the failure is not the last word.
    const lines = followed.stdout.trimEnd().split('\n');
    expect(lines.at(-2)).toMatch(/^result: failed /);
    // (the backoff has jitter: the wait is some days)
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^retry 1/3 scheduled at ${timeOfDay(json.retry.at)} \\(in \\d+d \\d\\dh\\); \`lifeline cancel rt-1\` cancels it$`,
      ),
    );
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

describe('retry after --follow', () => {
  it('--json ends with the scheduled retry in its result line', async () => {
    expect((await cli(server, ['create', 'rt-2', '--plan', 'later'])).code).toBe(0);
    const r = await cli(server, ['deploy', 'rt-2', '--follow', '--json']);
    expect(r.code).toBe(1);
    const last = JSON.parse(r.stdout.trimEnd().split('\n').at(-1)!);
    expect(last).toMatchObject({ result: 'failed', exit_code: 1, retry: { number: 1, of: 3 } });
  });

  it('a plan without retry ends with the result line alone', async () => {
    expect((await cli(server, ['create', 'rt-3', '--plan', 'fail'])).code).toBe(0);
    const r = await cli(server, ['deploy', 'rt-3', '--follow']);
    expect(r.code).toBe(1);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(/^result: failed /);
    expect(r.stdout).not.toMatch(/retry/);
  });
});

describe('the last retry', () => {
  it('following it ends saying that no retry is left', async () => {
    expect((await cli(server, ['create', 'rt-4', '--plan', 'soon'])).code).toBe(0);
    expect((await cli(server, ['deploy', 'rt-4', '--follow'])).stdout).toMatch(/^retry 1\/1 scheduled at /m);
    // Waited for through the API: a `lifeline` process per poll cost a second of CPU each.
    await waitFor(async () => {
      const dep = await server.api<{ state: string; current_attempt?: { number: number } }>(
        'GET',
        '/v1/deployments/rt-4',
      );
      return dep.state === 'failed' && dep.current_attempt?.number === 2;
    }, 'the retry to fail');
    const r = await cli(server, ['logs', 'rt-4', '--follow']);
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('retry 1/1 was the last: no automatic retry is left');
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
