// A lease that lapses while the watcher has work (the event loop was held longer than lease_ttl, as on
// a starved machine): the watcher waits for the lease instead of re-running its round on the microtask
// queue, which starved the heartbeat that renews the lease and hung the instance for good. Without the
// fix the engine's loop never turns again, so not even a test timeout fires in its process: the body
// runs in a child process (test/helpers/lease-lapse-child.ts), which this test kills after its own
// timeout, so a regression fails this test instead of hanging a worker.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { crashChildCommand } from '../helpers/crash.ts';

const CHILD = path.resolve(import.meta.dirname, '../helpers/lease-lapse-child.ts');
const CHILD_TIMEOUT_MS = 60_000;

async function runChild(): Promise<{
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}> {
  // Bundled once, as the crash test's child is: under tsx it takes seconds to load on a busy machine.
  const command = await crashChildCommand(CHILD);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      command.args,
      { timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL', env: { ...process.env } },
      (err, stdout, stderr) => {
        command.dispose();
        const e = err as (Error & { code?: number; signal?: string }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
        });
      },
    );
  });
}

describe('lease lapse with work pending', () => {
  it('the loop keeps turning, the lease comes back and the attempt ends', async () => {
    const r = await runChild();
    expect(r.signal, `the engine hung: killed after ${CHILD_TIMEOUT_MS / 1000} s\n${r.stderr}`).toBeNull();
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1) ?? 'null')).toEqual({ state: 'cancelled' });
  }, 90_000);
});
