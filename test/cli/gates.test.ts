// `lifeline show` and `--follow` on a waiting attempt (SPEC §13.4): they say what it waits for, and
// --follow says it live: its place in the queue as it moves up, the gate opening when the slot frees, then
// the run to its end. On SQLite and on the run's PostgreSQL (test/setup/postgres.ts), a database of its own.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { dbUrlFor } from '../helpers/dialect.ts';
import { cli, cliPlans, startCli, tempDir, TestServer, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/plans');
const gated = {
  deploy: [path.join(FIXTURES, 'ctl.sh')],
  teardown: [path.join(FIXTURES, 'ctl.sh')],
  concurrency: { key: 'lab', limit: 1 },
};

describe.each(['sqlite', 'postgres'] as const)('waiting attempts in the CLI (%s)', (store) => {
  let server: TestServer;

  beforeAll(async () => {
    let config = {};
    if (store === 'postgres') config = { db: await dbUrlFor('postgres', tempDir()) };
    server = await TestServer.start({ ...cliPlans(), gated }, config);
  });

  afterAll(async () => {
    await server?.stop();
  });

  interface Dep {
    id: string;
    current_attempt: { id: string; state: string } | null;
  }
  const dep = (name: string) => server.api<Dep>('GET', `/v1/deployments/${name}`);

  /** Ends the running `ctl` attempt of `name` with `rc`. */
  async function tellExit(name: string, rc: number): Promise<void> {
    await waitFor(async () => (await dep(name)).current_attempt?.state === 'running', `${name} running`);
    const fifo = path.join(server.dataDir, 'workspaces', (await dep(name)).id, 'ctl');
    await waitFor(() => {
      try {
        const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        fs.writeSync(fd, `${rc}\n`);
        fs.closeSync(fd);
        return true;
      } catch {
        return false;
      }
    }, `the control FIFO of ${name}`);
  }

  it('show says what the attempt waits for; --follow says it live and when the gate opens', async () => {
    for (const n of ['g1', 'g2']) expect((await cli(server, ['create', n, '--plan', 'gated'])).code).toBe(0);
    expect((await cli(server, ['deploy', 'g1'])).code).toBe(0);
    await waitFor(async () => (await dep('g1')).current_attempt?.state === 'running', 'g1 running');

    const follow = startCli(server, ['deploy', 'g2', '--follow']);
    await follow.waitForOutput(/waiting for concurrency key lab, position 1 in its queue/);
    const shown = await cli(server, ['show', 'g2']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/waiting\s+concurrency key lab, position 1 in its queue since/);

    await tellExit('g1', 0);
    await follow.waitForOutput(/concurrency gate opened after \d+\.\ds/);
    await follow.waitForOutput(/attempt #1 queued → running/);
    await tellExit('g2', 0);
    const r = await follow.done;
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out.indexOf('waiting for concurrency key lab')).toBeLessThan(
      out.indexOf('concurrency gate opened'),
    );
    expect(out.indexOf('concurrency gate opened')).toBeLessThan(out.indexOf('queued → running'));
    expect((await cli(server, ['show', 'g2'])).stdout).not.toMatch(/waiting\s+concurrency/);
  });

  it('--follow says the queue position as it moves up: 3, 2, 1, then the start (plain when piped)', async () => {
    const names = ['h', 'p1', 'p2', 'p3'];
    for (const n of names) expect((await cli(server, ['create', n, '--plan', 'gated'])).code).toBe(0);
    for (const n of ['h', 'p1', 'p2']) expect((await cli(server, ['deploy', n])).code).toBe(0);

    const follow = startCli(server, ['deploy', 'p3', '--follow']);
    await follow.waitForOutput(/waiting for concurrency key lab, position 3 in its queue/);
    // Each end frees the slot: the head of the queue starts and p3 moves up one place.
    await tellExit('h', 0);
    await follow.waitForOutput(/waiting for concurrency key lab, position 2 in its queue/);
    await tellExit('p1', 0);
    await follow.waitForOutput(/waiting for concurrency key lab, position 1 in its queue/);
    await tellExit('p2', 0);
    await follow.waitForOutput(/attempt #1 queued → running/);
    await tellExit('p3', 0);
    const r = await follow.done;
    expect(r.code, r.stderr).toBe(0);

    const out = r.stdout;
    const at = (s: string) => {
      const i = out.indexOf(s);
      expect(i, `${s} in:\n${out}`).toBeGreaterThanOrEqual(0);
      return i;
    };
    const order = [
      at('position 3 in its queue'),
      at('position 2 in its queue'),
      at('position 1 in its queue'),
      at('concurrency gate opened'),
      at('queued → running'),
    ];
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Each place is said once, and piped output is plain text (no colour, no status line).
    for (const p of [3, 2, 1]) expect(out.split(`position ${p} in its queue`).length - 1).toBe(1);
    expect(out).not.toMatch(/\x1b\[|\r/);
  });
});
