// Issue 17.4: a verifying check dies with the engine that started it. It used to run on (until its own
// deadline) after a SIGKILL of its owner, beside the re-check the next owner starts.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCheck } from '../../src/runner/check-process.ts';
import { tempDir, waitFor } from '../helpers/engine.ts';

const pids: number[] = [];
afterEach(() => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
};

describe('a verifying check and its owner', () => {
  it('a SIGKILLed owner takes its running check (and the check’s children) with it', async () => {
    const dir = tempDir();
    const pidsFile = path.join(dir, 'pids');
    // The check and a child of it, both long past the test: they must not outlive the owner.
    const argv = [
      'sh',
      '-c',
      `sleep 60 & echo $$ $! > '${pidsFile}.tmp'; mv '${pidsFile}.tmp' '${pidsFile}'; wait`,
    ];
    const checkTs = new URL('../../src/runner/check-process.ts', import.meta.url).href;
    const code =
      `import(${JSON.stringify(checkTs)}).then((m) => {` +
      ` const [argv, cwd] = JSON.parse(process.argv[1]);` +
      ` m.spawnCheck({ argv, env: { PATH: '/usr/bin:/bin' }, cwd, timeoutMs: 120_000 }); setInterval(() => {}, 1000); })`;
    const owner = spawn(process.execPath, ['--import', 'tsx', '-e', code, JSON.stringify([argv, dir])], {
      stdio: 'ignore',
    });
    pids.push(owner.pid!);
    const [check, child] = (
      await waitFor(
        () => (fs.existsSync(pidsFile) ? fs.readFileSync(pidsFile, 'utf8') : null),
        'the check to run',
        30_000,
      )
    )
      .trim()
      .split(' ')
      .map(Number);
    pids.push(check, child);
    expect(alive(check) && alive(child)).toBe(true);
    owner.kill('SIGKILL');
    await waitFor(() => !alive(check) && !alive(child), 'the check to die with its owner', 5_000);
  }, 60_000);

  it('a check still reports its exit code, and a signal as no code', async () => {
    const dir = tempDir();
    const output = path.join(dir, 'out');
    const run = (argv: string[]) =>
      spawnCheck({ argv, env: process.env, cwd: dir, timeoutMs: 10_000, output }).done;
    expect(await run(['sh', '-c', 'echo hi; exit 3'])).toBe(3);
    expect(fs.readFileSync(output, 'utf8')).toBe('hi\n');
    expect(await run(['sh', '-c', 'kill -TERM $$'])).toBeNull();
  });

  it('a check past its deadline is killed with its group', async () => {
    const dir = tempDir();
    const began = Date.now();
    const argv = ['sh', '-c', 'sleep 30 & wait'];
    expect(await spawnCheck({ argv, env: process.env, cwd: dir, timeoutMs: 1_000 }).done).toBeNull();
    expect(Date.now() - began).toBeLessThan(10_000);
  });
});
