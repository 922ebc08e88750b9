// runner.pl as a long-lived process: shared by the servers of one data dir in turn, its death or idle
// exit touching no running attempt, a fallback to supervisor.sh when it cannot start, long paths.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive, readStat, signalGroup, type ProcessIdentity } from '../../src/runner/identity.ts';
import { ShLauncher, type SupervisorHandle } from '../../src/runner/launcher.ts';
import { readExit, readProcess, readSupervisor, runDirPaths } from '../../src/runner/rundir.ts';
import { RunnerClient, runnerSocketName } from '../../src/runner/runner-client.ts';
import { removeTempDirs, tempDir, waitFor } from './helpers.ts';

const started: ProcessIdentity[] = [];
const clients: RunnerClient[] = [];
const runners: number[] = [];
afterEach(() => {
  for (const id of started.splice(0)) signalGroup(id, 'SIGKILL');
  for (const c of clients.splice(0)) c.close();
  for (const pid of runners.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  removeTempDirs();
});

function client(dataDir: string, opts: ConstructorParameters<typeof RunnerClient>[2] = {}) {
  const logged: string[] = [];
  const c = new RunnerClient(dataDir, new ShLauncher(), {
    log: (m) => logged.push(m),
    idleSeconds: 2,
    ...opts,
  });
  clients.push(c);
  return { c, logged };
}

/** Starts a plan that waits for a file, and returns its run dir, the file and the handle. */
function waiting(c: RunnerClient) {
  const dir = join(tempDir(), 'run');
  const go = join(tempDir(), 'go');
  const handle = c.start({
    dir,
    argv: ['sh', '-c', 'while [ ! -e "$1" ]; do sleep 0.02; done; echo done', 'sh', go],
    env: process.env,
    cwd: tempDir(),
  });
  return { dir, go, handle };
}

async function running(dir: string) {
  const proc = await waitFor(() => readProcess(dir), 'process file');
  started.push(proc);
  const sup = await waitFor(() => readSupervisor(dir), 'supervisor file');
  return { proc, sup };
}

/** The runner that forked a supervisor: its parent while it runs. */
function parentOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
}

const exited = (h: SupervisorHandle) =>
  new Promise<number | null>((r) => (h.exitCode !== null ? r(h.exitCode) : h.once('exit', r)));

describe('runner.pl', () => {
  it('one runner serves a data dir; the next server after a restart finds the same one', async () => {
    const data = tempDir('lifeline-data-');
    const first = client(data);
    const a = waiting(first.c);
    const { sup: supA } = await running(a.dir);
    const runner = parentOf(supA.pid);
    runners.push(runner);
    expect(readFileSync(`/proc/${runner}/cmdline`, 'utf8')).toContain('runner.pl');
    first.c.close(); // the server stops; the attempt runs on

    const second = client(data);
    const b = waiting(second.c);
    const { sup: supB } = await running(b.dir);
    expect(parentOf(supB.pid)).toBe(runner);
    writeFileSync(a.go, '');
    writeFileSync(b.go, '');
    expect(await exited(b.handle)).toBe(0);
    expect(await waitFor(() => readExit(a.dir), 'exit of a')).toMatchObject({ rc: 0 });
    expect(readFileSync(runDirPaths(a.dir).stdout, 'utf8')).toBe('done\n');
    expect(first.logged.concat(second.logged)).toEqual([]);
  });

  it('a SIGKILLed runner takes no attempt with it; the next launch starts a new runner', async () => {
    const data = tempDir('lifeline-data-');
    const { c, logged } = client(data);
    const a = waiting(c);
    const { proc, sup } = await running(a.dir);
    const runner = parentOf(sup.pid);
    process.kill(runner, 'SIGKILL');
    expect(await exited(a.handle)).toBeNull(); // "look at the run dir": the connection is gone
    expect(isAlive(proc)).toBe(true);
    expect(isAlive(sup)).toBe(true);
    writeFileSync(a.go, '');
    expect(await waitFor(() => readExit(a.dir), 'exit record')).toMatchObject({ rc: 0, signal: null });

    const b = waiting(c);
    const { sup: supB } = await running(b.dir);
    const next = parentOf(supB.pid);
    runners.push(next);
    expect(next).not.toBe(runner);
    writeFileSync(b.go, '');
    expect(await exited(b.handle)).toBe(0);
    expect(logged).toEqual([]);
  });

  it('exits when no server has been connected for its idle time; its supervisors live on', async () => {
    const data = tempDir('lifeline-data-');
    const { c } = client(data, { idleSeconds: 1 });
    const a = waiting(c);
    const { sup } = await running(a.dir);
    const runner = parentOf(sup.pid);
    const runnerStart = readStat(runner)!.start;
    c.close();
    await waitFor(() => readStat(runner)?.start !== runnerStart, 'the runner to exit', 10_000);
    expect(existsSync(join(data, runnerSocketName()))).toBe(false);
    expect(isAlive(sup)).toBe(true);
    writeFileSync(a.go, '');
    expect(await waitFor(() => readExit(a.dir), 'exit record')).toMatchObject({ rc: 0 });
  });

  it('answers a malformed request with F and goes on serving', async () => {
    const data = tempDir('lifeline-data-');
    const { c } = client(data);
    const a = waiting(c);
    const { sup } = await running(a.dir);
    runners.push(parentOf(sup.pid));
    const sock = net.connect(join(data, runnerSocketName()));
    const body = Buffer.from('L\0x1\0/tmp\0/tmp\x002\0only-one\0');
    sock.write(Buffer.concat([Buffer.from(`${body.length}\n`), body]));
    const reply = await new Promise<string>((r) => sock.once('data', (d) => r(d.toString())));
    sock.end();
    expect(reply).toBe('F x1 bad request\n');
    writeFileSync(a.go, '');
    expect(await exited(a.handle)).toBe(0);
  });

  it('without perl, attempts are started by supervisor.sh, and that is said once', async () => {
    const { c, logged } = client(tempDir('lifeline-data-'), { perl: '/nonexistent/perl' });
    const a = waiting(c);
    const { sup } = await running(a.dir);
    expect(readFileSync(`/proc/${sup.pid}/cmdline`, 'utf8')).toContain('supervisor.sh');
    writeFileSync(a.go, '');
    expect(await exited(a.handle)).toBe(0);
    const b = c.start({ dir: join(tempDir(), 'run'), argv: ['true'], env: process.env, cwd: tempDir() });
    expect(await exited(b)).toBe(0);
    expect(logged).toEqual(['the perl runner could not be started; attempts are started by supervisor.sh']);
  });

  it('a data dir too deep for a unix socket path is reached through a directory fd', async () => {
    let data = tempDir('lifeline-data-');
    while (data.length < 120) data = join(data, 'a-rather-long-directory-name');
    mkdirSync(data, { recursive: true });
    const { c, logged } = client(data);
    const a = waiting(c);
    const { sup } = await running(a.dir);
    runners.push(parentOf(sup.pid));
    expect(readFileSync(`/proc/${sup.pid}/cmdline`, 'utf8')).toContain('runner.pl');
    writeFileSync(a.go, '');
    expect(await exited(a.handle)).toBe(0);
    expect(logged).toEqual([]);
  });
});
