// `--follow` across a server restart: the CLI reconnects with Last-Event-ID and shows every log line
// exactly once, then exits with the attempt's outcome, also when the attempt ended while the server was down.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, count, spawnCli, startCli, TestServer, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start();
});

afterAll(async () => {
  await server?.stop();
});

const attemptOf = async (name: string) =>
  (await server.api<{ current_attempt: { id: string } }>('GET', `/v1/deployments/${name}`)).current_attempt
    .id;

describe('--follow survives a server restart', () => {
  it('restart while the attempt runs: every line exactly once, exit 0', async () => {
    await cli(server, ['create', 'r-1', '--plan', 'slow_ticker']);
    const follow = startCli(server, ['deploy', 'r-1', '--follow']);
    await follow.waitForOutput(/│ tick 3\n/);
    await server.stop('SIGTERM');
    await server.boot();
    const r = await follow.done;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (let i = 1; i <= 20; i++) expect(count(r.stdout, `│ tick ${i}`), `tick ${i}`).toBe(1);
    expect(r.stdout).toMatch(/connection to the server lost .*reconnecting/);
    expect(r.stdout).toMatch(/reconnected/);
    expect(r.stdout.match(/attempt #1 running → succeeded/g)).toHaveLength(1);
    expect(r.stdout).toMatch(/result: succeeded {2}rc=0/);
  });

  it('the attempt ends while the server is down: recovery finishes it and the follow exits 1', async () => {
    await cli(server, ['create', 'r-2', '--plan', 'ticker_fail']);
    const follow = startCli(server, ['deploy', 'r-2', '--follow']);
    await follow.waitForOutput(/│ tick 2\n/);
    const att = await attemptOf('r-2');
    await server.stop('SIGTERM');
    // the plan goes on without the server and leaves its exit record
    await waitFor(() => fs.existsSync(path.join(server.runDir(att), 'exit')), 'the exit record', 60_000);
    await server.boot();
    const r = await follow.done;
    expect(r.code).toBe(1);
    for (let i = 1; i <= 8; i++) expect(count(r.stdout, `│ tick ${i}`), `tick ${i}`).toBe(1);
    expect(r.stdout).toMatch(/result: failed {2}rc=1 {2}reason=exit_nonzero/);
    const a = await server.api<{ recovered: boolean; state: string }>('GET', `/v1/attempts/${att}`);
    expect(a).toMatchObject({ state: 'failed', recovered: true });
  });

  it('logs --follow and events --follow resume too', async () => {
    await cli(server, ['create', 'r-3', '--plan', 'ctl']);
    expect((await cli(server, ['deploy', 'r-3'])).code).toBe(0);
    const logs = startCli(server, ['logs', 'r-3', '--follow']);
    // The real binary: SIGTERM ends it with 0.
    const events = spawnCli(server, ['events', '--follow', '--deployment', 'r-3', '--json']);
    await logs.waitForOutput(/^waiting for control$/m);
    await events.waitForOutput(/"waiting for control"/);
    await server.stop('SIGTERM');
    await server.boot();
    const dep = await server.api<{ id: string }>('GET', '/v1/deployments/r-3');
    await server.release(dep.id, 0);
    const r = await logs.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('waiting for control\nexiting 0\n');
    expect(r.stderr).toMatch(/connection to the server lost .*reconnecting/);
    expect(r.stderr).toMatch(/result: succeeded/);
    await events.waitForOutput(/"attempt_end"/);
    expect(events.stderr).toMatch(/reconnecting/);
    events.proc.kill('SIGTERM');
    const e = await events.done;
    expect(e.code).toBe(0);
    const lines = e.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; type: string; data: { text?: string } });
    const seqs = lines.map((l) => l.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    expect(lines.filter((l) => l.type === 'log_line').map((l) => l.data.text)).toEqual([
      'waiting for control',
      'exiting 0',
    ]);
  });
});
