// Stopping a server started the way the README starts one (`npm start`, `npx lifeline serve … &`) with
// SIGTERM to the pid the shell got: npm runs the command under `sh -c`, and a SIGTERM npm passes on to that
// shell alone would leave the real server running. Afterwards no process of that server may remain.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanEnv, freePort, ROOT, tempDir, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 180_000 });

/** Pids of processes whose environment holds `marker` (every process of one server carries it). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(marker))
        found.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

let marker = '';
let dir = '';
let child: ChildProcess | null = null;

afterEach(() => {
  for (const pid of marker ? processesWith(marker) : []) process.kill(pid, 'SIGKILL');
  if (child?.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function startAndStop(cmd: string, args: (port: number) => string[]): Promise<void> {
  dir = tempDir('lifeline-stop-');
  marker = `LIFELINE_DATA_DIR=${dir}`;
  const port = await freePort();
  let out = '';
  child = spawn(cmd, args(port), {
    cwd: ROOT,
    env: cleanEnv({ LIFELINE_DATA_DIR: dir, LIFELINE_DB: `sqlite:${path.join(dir, 'lifeline.db')}` }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise((r) => child!.once('exit', r));
  await waitFor(
    async () => {
      if (child!.exitCode !== null) throw new Error(`${cmd} exited:\n${out}`);
      return (await fetch(`http://127.0.0.1:${port}/v1/health`).catch(() => null))?.ok === true;
    },
    `${cmd} to answer /v1/health`,
    120_000,
  );
  expect(processesWith(marker).length).toBeGreaterThan(1); // npm, and the server it started

  child.kill('SIGTERM');
  await exited;
  // The server stops gracefully (up to its 15 s grace); its runner, if one started, leaves when idle.
  await waitFor(
    () => processesWith(marker).length === 0,
    'every process of the stopped server to exit',
    40_000,
  );
  expect(await fetch(`http://127.0.0.1:${port}/v1/health`).catch(() => null)).toBeNull();
}

describe('SIGTERM to the pid a README command got', () => {
  it('`npm start` stops the real server', async () => {
    await startAndStop('npm', (port) => ['start', '--', '--port', String(port)]);
  });

  it('`npx lifeline serve` stops the real server', async () => {
    await startAndStop('npx', (port) => [
      'lifeline',
      'serve',
      '--config',
      'examples/lifeline.yaml',
      '--port',
      String(port),
    ]);
  });
});
