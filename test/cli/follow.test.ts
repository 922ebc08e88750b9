// `--follow` end to end against a real server, ending in each exit code of SPEC §7; the exit statuses 1
// and 3 also through the real binary.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { binCli, cli, count, spawnCli, startCli, TestServer, waitFor } from './helpers.ts';

interface Dep {
  id: string;
  state: string;
  current_attempt: { id: string; number: number; state: string } | null;
}

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start();
});

afterAll(async () => {
  await server?.stop();
});

const dep = (name: string) => server.api<Dep>('GET', `/v1/deployments/${name}`);

describe('deploy --follow', () => {
  it('exits 0 when the attempt succeeds, with every log line, every state change and a summary', async () => {
    expect((await cli(server, ['create', 'f-ok', '--plan', 'quick'])).code).toBe(0);
    const r = await cli(server, ['deploy', 'f-ok', '--follow']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const i of [1, 2, 3]) expect(count(r.stdout, `│ tick ${i}`)).toBe(1);
    expect(r.stdout).toMatch(/attempt #1 queued → running/);
    expect(r.stdout).toMatch(/f-ok pending → deploying/);
    expect(r.stdout).toMatch(/f-ok deploying → ready/);
    expect(r.stdout).toMatch(
      /result: succeeded {2}rc=0 {2}reason=- {2}duration=\d+\.\ds {2}deployment=ready/,
    );
    expect(r.stdout).not.toMatch(/\x1b\[/); // not a TTY: no colours, no spinner
    expect((await dep('f-ok')).state).toBe('ready');
  });

  it('exits 1 when the attempt fails, and prints rc and reason', async () => {
    await cli(server, ['create', 'f-fail', '--plan', 'fail']);
    // The real binary: its exit status is 1.
    const r = await binCli(server, ['deploy', 'f-fail', '--follow']);
    expect(r.code).toBe(1);
    expect(count(r.stdout, '│ about to fail')).toBe(1);
    expect(r.stdout).toMatch(/result: failed {2}rc=2 {2}reason=exit_nonzero/);
    expect(r.stdout).toMatch(/deployment=failed/);
  });

  it('exits 1 when the attempt is cancelled while it runs', async () => {
    await cli(server, ['create', 'f-cancel', '--plan', 'sleep']);
    const follow = startCli(server, ['deploy', 'f-cancel', '--follow']);
    await follow.waitForOutput(/│ sleeping/);
    const c = await cli(server, ['cancel', 'f-cancel']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/cancel requested for deploy attempt #1 of f-cancel/);
    const r = await follow.done;
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/attempt #1 running → cancelled/);
    expect(r.stdout).toMatch(/result: cancelled .*reason=cancelled/);
  });

  it('exits 3 when the outcome is lost (supervisor and process killed), and unknown is then a stop sign', async () => {
    await cli(server, ['create', 'f-lost', '--plan', 'sleep']);
    // The real binary: its exit status is 3.
    const follow = spawnCli(server, ['deploy', 'f-lost', '--follow']);
    await follow.waitForOutput(/│ sleeping/);
    const d = await dep('f-lost');
    await server.loseAttempt(d.current_attempt!.id);
    const r = await follow.done;
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/attempt #1 running → unknown \(exit_unobserved\)/);
    expect(r.stdout).toMatch(/result: unknown {2}rc=- {2}reason=exit_unobserved .*deployment=unknown/);
    expect(r.stdout).toMatch(/lifeline resolve f-lost/);

    // teardown and deploy are refused while unknown: exit 2 with the problem code
    const t = await cli(server, ['teardown', 'f-lost', '--confirm', 'f-lost', '--follow']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/^error: DEPLOYMENT_UNKNOWN_STATE: /m);
    const again = await cli(server, ['deploy', 'f-lost']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/DEPLOYMENT_UNKNOWN_STATE/);

    // an operator resolves it
    const res = await cli(server, [
      'resolve',
      'f-lost',
      '--state',
      'failed',
      '--reason',
      'checked by hand: nothing runs',
    ]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/resolved f-lost: failed/);
    const show = await cli(server, ['show', 'f-lost']);
    expect(show.stdout).toMatch(/ unknown +\S+ +outcome_lost \(exit_unobserved\) +runner +#1/);
    expect(show.stdout).toMatch(/ failed +\S+ so far +resolved \(checked by hand: nothing runs\) +anonymous/);
    expect((await dep('f-lost')).state).toBe('failed');
  });

  it('check resolves an unknown deployment from its verdict', async () => {
    await cli(server, ['create', 'f-check', '--plan', 'sleep']);
    const follow = startCli(server, ['deploy', 'f-check', '--follow', '--json']);
    await waitFor(async () => (await dep('f-check')).current_attempt?.state === 'running', 'running');
    await server.loseAttempt((await dep('f-check')).current_attempt!.id);
    const r = await follow.done;
    expect(r.code).toBe(3);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ result: 'unknown', exit_code: 3, attempt: { state: 'unknown' } });
    expect(lines.filter((e) => e.type === 'attempt_end')).toHaveLength(1);

    const c = await cli(server, ['check', 'f-check']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/check of f-check: up \(rc 0\); f-check is ready/);
    expect((await dep('f-check')).state).toBe('ready');
    const cj = await cli(server, ['check', 'f-check', '--json']);
    expect(JSON.parse(cj.stdout)).toMatchObject({ verdict: 'up', rc: 0, deployment: { state: 'ready' } });
  });

  it('--json prints each event of the attempt as a JSON line, then the result', async () => {
    await cli(server, ['create', 'f-json', '--plan', 'quick']);
    const r = await cli(server, ['deploy', 'f-json', '--follow', '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const events = lines.slice(0, -1);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(events.map((e) => e.attempt_id)).size).toBe(1);
    expect(events.filter((e) => e.type === 'log_line').map((e) => e.data.text)).toEqual([
      'tick 1',
      'tick 2',
      'tick 3',
    ]);
    expect(events.at(-1)).toMatchObject({ type: 'attempt_end', data: { state: 'succeeded', rc: 0 } });
    expect(lines.at(-1)).toMatchObject({
      result: 'succeeded',
      exit_code: 0,
      attempt: { state: 'succeeded', rc: 0 },
    });
  });

  it('a second attempt is followed from its own start, not from the deployment history', async () => {
    const r = await cli(server, ['deploy', 'f-ok', '--follow']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/attempt #2 /);
    expect(r.stdout).not.toMatch(/attempt #1/);
    expect(count(r.stdout, '│ tick 1')).toBe(1);
    expect(r.stdout).toMatch(/f-ok ready → deploying/);
  });

  it('teardown --follow exits 0 and the deployment is torn down; delete then removes it', async () => {
    const r = await cli(server, ['teardown', 'f-ok', '--confirm', 'f-ok', '--follow']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Tearing down f-ok/);
    expect(r.stdout).toMatch(/f-ok tearing_down → torn_down/);
    expect(r.stdout).toMatch(/result: succeeded .*deployment=torn_down/);
    const again = await cli(server, ['teardown', 'f-ok', '--confirm', 'f-ok']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/error: ALREADY_TORN_DOWN: /);
    const del = await cli(server, ['delete', 'f-ok']);
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(/deleted f-ok/);
    expect((await cli(server, ['show', 'f-ok'])).stderr).toMatch(/NOT_FOUND/);
  });

  it('teardown --follow of a failing teardown exits 1', async () => {
    const r = await cli(server, ['teardown', 'f-fail', '--confirm', 'f-fail', '--follow']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/result: failed .*reason=exit_nonzero/);
  });
});

describe('logs', () => {
  const ticks = Array.from({ length: 16 }, (_, i) => `tick ${i + 1}`);

  it('logs NAME before any attempt is NOT_FOUND (exit 2)', async () => {
    await cli(server, ['create', 'l-1', '--plan', 'ticker']);
    const r = await cli(server, ['logs', 'l-1', '--follow']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NOT_FOUND: l-1 has no attempts yet/);
  });

  it('logs --follow streams the lines of the running attempt and exits with its outcome', async () => {
    expect((await cli(server, ['deploy', 'l-1'])).code).toBe(0);
    const r = await cli(server, ['logs', 'l-1', '--follow']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(ticks); // only the log lines on stdout
    expect(r.stderr).toMatch(/result: succeeded/);
    const all = await cli(server, ['logs', 'l-1']);
    expect(all.code).toBe(0);
    expect(all.stdout.trim().split('\n')).toEqual(ticks);
  });

  it('logs --follow of an attempt that is already over ends with its exit code', async () => {
    await cli(server, ['create', 'l-2', '--plan', 'fail']);
    expect((await cli(server, ['deploy', 'l-2', '--follow'])).code).toBe(1);
    const over = await cli(server, ['logs', 'l-2', '--follow']);
    expect(over.code).toBe(1);
    expect(over.stdout).toBe('about to fail\n');
  });

  it('logs --attempt N picks an older attempt; --json parses; a missing N is NOT_FOUND', async () => {
    expect((await cli(server, ['deploy', 'l-1', '--follow'])).code).toBe(0);
    const first = await cli(server, ['logs', 'l-1', '--attempt', '1', '--json']);
    expect(JSON.parse(first.stdout)).toMatchObject({ number: 1, state: 'succeeded', lines: ticks });
    const none = await cli(server, ['logs', 'l-1', '--attempt', '9']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/NOT_FOUND: l-1 has no attempt #9/);
    const bad = await cli(server, ['logs', 'l-1', '--attempt', 'zero']);
    expect(bad.code).toBe(2);
  });
});
