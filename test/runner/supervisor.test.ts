import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootId, isAlive, readStat, signalGroup, type ProcessIdentity } from '../../src/runner/identity.ts';
import { readExit, readProcess, readSupervisor, runDirPaths } from '../../src/runner/rundir.ts';
import { ShLauncher, type Launcher, type SupervisorHandle } from '../../src/runner/launcher.ts';
import { findPerl, RunnerClient } from '../../src/runner/runner-client.ts';
import { removeTempDirs, tempDir, waitFor } from './helpers.ts';

const started: ProcessIdentity[] = [];
const launchers: Launcher[] = [];
/** What a runner client said when it fell back to supervisor.sh: the perl cases must never. */
const fellBack: string[] = [];
afterEach(() => {
  for (const id of started.splice(0)) signalGroup(id, 'SIGKILL');
  for (const l of launchers.splice(0)) l.close();
  removeTempDirs();
  expect(fellBack.splice(0)).toEqual([]);
});

/** The two supervisors: runner.pl forks one per attempt, supervisor.sh is spawned per attempt. */
const KINDS = {
  sh: { script: 'supervisor.sh', make: (): Launcher => new ShLauncher() },
  perl: {
    script: 'runner.pl',
    make: (): Launcher =>
      new RunnerClient(tempDir('lifeline-data-'), new ShLauncher(), {
        log: (m) => fellBack.push(m),
        idleSeconds: 2,
      }),
  },
} as const;

function launcherOf(kind: keyof typeof KINDS): Launcher {
  const l = KINDS[kind].make();
  launchers.push(l);
  return l;
}

async function processOf(dir: string): Promise<ProcessIdentity> {
  const id = await waitFor(() => readProcess(dir), 'process file');
  started.push(id);
  return id;
}

const exitOf = (dir: string) => waitFor(() => readExit(dir), 'exit record');
const exitCode = (c: ChildProcess | SupervisorHandle) =>
  new Promise<number | null>((r) =>
    c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code)),
  );

/** Field `n` (1-based) of /proc/pid/stat, counted after the last ')'. */
function statField(pid: number, n: number): string | undefined {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[n - 3];
}

/** Live (non-zombie) members of a process group. */
function groupMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        const state = statField(pid, 3);
        return statField(pid, 5) === String(pgid) && state !== 'Z' && state !== 'X';
      } catch {
        return false;
      }
    });
}

it('perl is here, so the runner cases below run it rather than fall back', () => {
  expect(findPerl()).not.toBeNull();
});

describe.each(['sh', 'perl'] as const)('the %s supervisor', (kind) => {
  function run(argv: string[], dir = join(tempDir(), 'run')): { dir: string; child: SupervisorHandle } {
    const child = launcherOf(kind).start({ dir, argv, env: process.env, cwd: tempDir() });
    return { dir, child };
  }

  it('records supervisor, process and exit 0 for `true`', async () => {
    const { dir, child } = run(['true']);
    const exit = await exitOf(dir);
    expect(exit).toMatchObject({ rc: 0, signal: null });
    expect(Math.abs(exit.at - Date.now())).toBeLessThan(10 * 60_000);
    expect(await exitCode(child)).toBe(0);
    const sup = readSupervisor(dir);
    const proc = readProcess(dir);
    expect(sup).toMatchObject({ pid: child.pid, boot: bootId() });
    expect(proc?.boot).toBe(bootId());
    expect(proc?.pid).not.toBe(sup?.pid);
    expect(readFileSync(runDirPaths(dir).exit, 'utf8')).toBe('0 -\n');
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('records a non-zero rc and captures stdout/stderr', async () => {
    const { dir } = run(['sh', '-c', 'echo out; echo err >&2; exit 2']);
    expect(await exitOf(dir)).toMatchObject({ rc: 2, signal: null });
    expect(readFileSync(runDirPaths(dir).stdout, 'utf8')).toBe('out\n');
    expect(readFileSync(runDirPaths(dir).stderr, 'utf8')).toBe('err\n');
  });

  it('passes argv without a shell and records the plan pid as its own session leader', async () => {
    const weird = '$(touch pwned) `id` ; "quoted" \\ * \n';
    const { dir } = run(['sh', '-c', 'echo $$; printf "%s" "$1"; cat /proc/self/status', 'sh', weird]);
    const proc = await processOf(dir);
    await exitOf(dir);
    const out = readFileSync(runDirPaths(dir).stdout, 'utf8');
    expect(out.startsWith(`${proc.pid}\n${weird}`)).toBe(true);
    // Plans start with no signal ignored (a `&` job of sh would ignore INT and QUIT).
    expect(out).toMatch(/^SigIgn:\s+0+$/m);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  it('the plan is its own session and group; signalling the group spares the supervisor', async () => {
    const { dir, child } = run(['sleep', '60']);
    const proc = await processOf(dir);
    const sup = readSupervisor(dir)!;
    await waitFor(() => readFileSync(`/proc/${proc.pid}/comm`, 'utf8') === 'sleep\n', 'exec of sleep');
    expect(statField(proc.pid, 5)).toBe(String(proc.pid)); // pgrp
    expect(statField(proc.pid, 6)).toBe(String(proc.pid)); // session
    expect(statField(proc.pid, 4)).toBe(String(sup.pid)); // ppid: the supervisor itself
    expect(readFileSync(`/proc/${sup.pid}/cmdline`, 'utf8')).toContain(KINDS[kind].script);
    expect(statField(sup.pid, 6)).toBe(String(sup.pid)); // the supervisor's own session too
    expect(isAlive(proc)).toBe(true);
    expect(signalGroup(proc, 'SIGTERM')).toBe(true);
    expect(await exitOf(dir)).toMatchObject({ rc: 143, signal: 'SIGTERM' });
    expect(await exitCode(child)).toBe(0); // the supervisor lived to write the record
    expect(isAlive(proc)).toBe(false);
  });

  it('a group kill takes the children the plan forked', async () => {
    const { dir } = run(['sh', '-c', 'sleep 60 & sleep 60']);
    const proc = await processOf(dir);
    const members = await waitFor(() => {
      const m = groupMembers(proc.pid);
      return m.length >= 2 && m.every((pid) => readStat(pid) !== null) ? m : null;
    }, 'plan and its child');
    const ids = members.map((pid) => ({ pid, start: readStat(pid)!.start, boot: bootId() }));
    expect(signalGroup(proc, 'SIGKILL')).toBe(true);
    expect(await exitOf(dir)).toMatchObject({ rc: 137, signal: 'SIGKILL' });
    await waitFor(() => ids.every((id) => !isAlive(id)), 'group members gone');
  });

  it('records 127 when the program does not exist', async () => {
    const { dir, child } = run(['/nonexistent/program']);
    expect(await exitOf(dir)).toMatchObject({ rc: 127, signal: null });
    expect(await exitCode(child)).toBe(0);
    expect(readFileSync(runDirPaths(dir).stderr, 'utf8')).toContain('/nonexistent/program');
  });

  it('runs the plan in cwd with its env and PATH untouched', async () => {
    const cwd = tempDir();
    const dir = join(tempDir(), 'run');
    const env = { PATH: '/bin:/usr/bin:/custom/bin', LIFELINE_X: 'a b "c"' };
    launcherOf(kind).start({ dir, argv: ['sh', '-c', 'pwd; echo "$PATH"; echo "$LIFELINE_X"'], env, cwd });
    expect(await exitOf(dir)).toMatchObject({ rc: 0 });
    expect(readFileSync(runDirPaths(dir).stdout, 'utf8')).toBe(`${cwd}\n${env.PATH}\n${env.LIFELINE_X}\n`);
  });

  it('the plan outlives the process that started the supervisor', async () => {
    const dir = join(tempDir(), 'run');
    const go = join(tempDir(), 'go');
    const argv = ['sh', '-c', 'while [ ! -e "$1" ]; do sleep 0.02; done; echo done', 'sh', go];
    // Started from a node that exits as soon as the supervisor is (tsx loads the .ts module there).
    const launcherTs = new URL('../../src/runner/launcher.ts', import.meta.url).href;
    const code =
      `import(${JSON.stringify(launcherTs)}).then((m) => {` +
      ` const [kind, dataDir, opts] = JSON.parse(process.argv[1]);` +
      ` const h = m.createLauncher(kind, dataDir).start(opts);` +
      ` h.once('spawn', () => process.exit(0)); setTimeout(() => process.exit(3), 10_000); })`;
    const opts = JSON.stringify([
      kind,
      tempDir('lifeline-data-'),
      { dir, argv, env: process.env, cwd: tempDir() },
    ]);
    const parent = spawn(process.execPath, ['--import', 'tsx', '-e', code, opts], { stdio: 'ignore' });
    expect(await exitCode(parent)).toBe(0);
    const proc = await processOf(dir);
    const sup = await waitFor(() => readSupervisor(dir), 'supervisor file');
    expect(isAlive(proc)).toBe(true);
    expect(isAlive(sup)).toBe(true);
    expect(readExit(dir)).toBeNull();
    writeFileSync(go, '');
    expect(await exitOf(dir)).toMatchObject({ rc: 0, signal: null });
    expect(readFileSync(runDirPaths(dir).stdout, 'utf8')).toBe('done\n');
  });
});
