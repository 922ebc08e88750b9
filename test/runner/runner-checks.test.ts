// Checks run by runner.pl (issue 21: scheduled checks must not cost the server a fork of itself each):
// the check is the runner's grandchild, not the server's; its exit code comes back; its group dies at
// the deadline, on a kill, and when the server that asked for it dies or stops; and a check whose runner
// died is run again by the fallback, so its outcome is not lost.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CheckStopped } from '../../src/runner/launcher-api.ts';
import { ShLauncher } from '../../src/runner/launcher.ts';
import { RunnerClient } from '../../src/runner/runner-client.ts';
import { removeTempDirs, tempDir, waitFor } from './helpers.ts';

const clients: RunnerClient[] = [];
const pids: number[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  removeTempDirs();
});

function client(): RunnerClient {
  const c = new RunnerClient(tempDir('lifeline-data-'), new ShLauncher(), { idleSeconds: 2 });
  clients.push(c);
  return c;
}

const env = { PATH: '/usr/bin:/bin' };

function parentOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z';
  } catch {
    return false;
  }
}

/** A check that writes its pid and a background child's pid to `file`, then waits for the child. */
function lingering(file: string): string[] {
  return ['sh', '-c', `sleep 60 & echo $$ $! > '${file}.tmp'; mv '${file}.tmp' '${file}'; wait`];
}

async function pidsIn(file: string): Promise<[number, number]> {
  const text = await waitFor(() => existsSync(file) && readFileSync(file, 'utf8'), 'the check to run');
  const [check, child] = text.trim().split(' ').map(Number);
  pids.push(check, child);
  return [check, child];
}

describe('checks through runner.pl', () => {
  it('a check is forked by the runner, not by the server, and its exit code comes back', async () => {
    const c = client();
    const dir = tempDir();
    const file = join(dir, 'pids');
    const run = c.startCheck({
      argv: ['sh', '-c', `echo $$ > '${file}.tmp'; mv '${file}.tmp' '${file}'; sleep 1; exit 3`],
      env,
      cwd: dir,
      timeoutMs: 30_000,
    });
    const check = Number(await waitFor(() => existsSync(file) && readFileSync(file, 'utf8'), 'the check'));
    const guard = parentOf(check);
    expect(guard).not.toBe(process.pid);
    expect(readFileSync(`/proc/${parentOf(guard)}/cmdline`, 'utf8')).toContain('runner.pl');
    expect(await run.done).toBe(3);
    const ok = c.startCheck({ argv: ['true'], env, cwd: dir, timeoutMs: 30_000 });
    expect(await ok.done).toBe(0);
    const signalled = c.startCheck({ argv: ['sh', '-c', 'kill -TERM $$'], env, cwd: dir, timeoutMs: 30_000 });
    expect(await signalled.done).toBeNull();
    const missing = c.startCheck({ argv: ['no-such-check-xyz'], env, cwd: dir, timeoutMs: 30_000 });
    expect(await missing.done).toBe(127);
  });

  it('the deadline and a kill end the check with its whole group', async () => {
    const c = client();
    const dir = tempDir();
    const late = c.startCheck({ argv: lingering(join(dir, 'a')), env, cwd: dir, timeoutMs: 1_000 });
    const [check, child] = await pidsIn(join(dir, 'a'));
    expect(await late.done).toBeNull();
    await waitFor(() => !alive(check) && !alive(child), 'the late check and its child to die', 5_000);

    const killed = c.startCheck({ argv: lingering(join(dir, 'b')), env, cwd: dir, timeoutMs: 60_000 });
    const [check2, child2] = await pidsIn(join(dir, 'b'));
    killed.kill();
    expect(await killed.done).toBeNull();
    await waitFor(() => !alive(check2) && !alive(child2), 'the killed check and its child to die', 5_000);
  });

  it('a SIGKILLed server takes its running check (and the check’s children) with it', async () => {
    const dir = tempDir();
    const data = tempDir('lifeline-data-');
    const file = join(dir, 'pids');
    const clientTs = new URL('../../src/runner/runner-client.ts', import.meta.url).href;
    const launcherTs = new URL('../../src/runner/launcher.ts', import.meta.url).href;
    const code =
      `Promise.all([import(${JSON.stringify(clientTs)}), import(${JSON.stringify(launcherTs)})]).then(([r, l]) => {` +
      ` const [argv, cwd, data] = JSON.parse(process.argv[1]);` +
      ` const c = new r.RunnerClient(data, new l.ShLauncher(), {});` +
      ` c.startCheck({ argv, env: { PATH: '/usr/bin:/bin' }, cwd, timeoutMs: 120_000 });` +
      ` setInterval(() => {}, 1000); })`;
    const owner = spawn(
      process.execPath,
      ['--import', 'tsx', '-e', code, JSON.stringify([lingering(file), dir, data])],
      { stdio: 'ignore' },
    );
    pids.push(owner.pid!);
    const [check, child] = await pidsIn(file);
    expect(parentOf(parentOf(check))).not.toBe(owner.pid); // the runner's, not the owner's
    owner.kill('SIGKILL');
    await waitFor(() => !alive(check) && !alive(child), 'the check to die with its server', 5_000);
  }, 60_000);

  it('a server that stops ends its checks without an outcome', async () => {
    const c = client();
    const dir = tempDir();
    const run = c.startCheck({ argv: lingering(join(dir, 'p')), env, cwd: dir, timeoutMs: 60_000 });
    const [check, child] = await pidsIn(join(dir, 'p'));
    c.close();
    await expect(run.done).rejects.toBeInstanceOf(CheckStopped);
    await waitFor(() => !alive(check) && !alive(child), 'the check to die with the stop', 5_000);
  });

  it('a check whose runner died is run again by the server, and the orphan stops', async () => {
    const c = client();
    const dir = tempDir();
    const log = join(dir, 'runs');
    const file = join(dir, 'pids');
    // The first run waits (its pids in `file`); the second, with `file` there, answers at once.
    const argv = [
      'sh',
      '-c',
      `echo run >> '${log}'; if [ -e '${file}' ]; then exit 3; fi; ` +
        `sleep 60 & echo $$ $! > '${file}.tmp'; mv '${file}.tmp' '${file}'; wait`,
    ];
    const run = c.startCheck({ argv, env, cwd: dir, timeoutMs: 60_000 });
    const [check, child] = await pidsIn(file);
    const runner = parentOf(parentOf(check));
    expect(readFileSync(`/proc/${runner}/cmdline`, 'utf8')).toContain('runner.pl');
    process.kill(runner, 'SIGKILL');
    expect(await run.done).toBe(3);
    expect(readFileSync(log, 'utf8')).toBe('run\nrun\n');
    // The orphaned guard sees its runner gone and kills the first run's group.
    await waitFor(() => !alive(check) && !alive(child), 'the orphaned check to die', 10_000);
  });
});
