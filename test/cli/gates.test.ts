// `lifeline show` and `--follow` on a waiting attempt (SPEC §13.4): they say what it waits for, and
// --follow says it live: the wait, the gate opening when the slot frees, then the run to its end.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, cliPlans, spawnCli, TestServer, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/plans');
let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start({
    ...cliPlans(),
    gated: {
      deploy: [path.join(FIXTURES, 'ctl.sh')],
      teardown: [path.join(FIXTURES, 'ctl.sh')],
      concurrency: { key: 'lab', limit: 1 },
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

interface Dep {
  id: string;
  current_attempt: { id: string; state: string } | null;
}
const dep = (name: string) => server.api<Dep>('GET', `/v1/deployments/${name}`);

async function tellExit(depId: string, rc: number): Promise<void> {
  const fifo = path.join(server.dataDir, 'workspaces', depId, 'ctl');
  await waitFor(() => {
    try {
      const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.writeSync(fd, `${rc}\n`);
      fs.closeSync(fd);
      return true;
    } catch {
      return false;
    }
  }, `the control FIFO of ${depId}`);
}

describe('waiting attempts in the CLI', () => {
  it('show says what the attempt waits for; --follow says it live and when the gate opens', async () => {
    for (const n of ['g1', 'g2']) expect((await cli(server, ['create', n, '--plan', 'gated'])).code).toBe(0);
    expect((await cli(server, ['deploy', 'g1'])).code).toBe(0);
    await waitFor(async () => (await dep('g1')).current_attempt?.state === 'running', 'g1 running');

    const follow = spawnCli(server, ['deploy', 'g2', '--follow']);
    await follow.waitForOutput(/waiting for concurrency key lab, position 1 in its queue/);
    const shown = await cli(server, ['show', 'g2']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/waiting\s+concurrency key lab, position 1 in its queue since/);

    await tellExit((await dep('g1')).id, 0);
    await follow.waitForOutput(/concurrency gate opened after \d+\.\ds/);
    await follow.waitForOutput(/attempt #1 queued → running/);
    await tellExit((await dep('g2')).id, 0);
    const r = await follow.done;
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out.indexOf('waiting for concurrency key lab')).toBeLessThan(
      out.indexOf('concurrency gate opened'),
    );
    expect(out.indexOf('concurrency gate opened')).toBeLessThan(out.indexOf('queued → running'));
    expect((await cli(server, ['show', 'g2'])).stdout).not.toMatch(/waiting\s+concurrency/);
  });
});
