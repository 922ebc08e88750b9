// runner.pl as a long-lived process: shared by the servers of one data dir in turn, its death or idle
// exit touching no running attempt, a fallback to supervisor.sh when it cannot start, long paths.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
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
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatch(
      /^the perl runner could not be used \(\/nonexistent\/perl could not be run: ENOENT\); attempts are started by supervisor\.sh/,
    );
  });

  it('a runner that failed to start is tried again after a pause, not given up for good', async () => {
    // A perl that fails its first start only (a slow or broken moment), then works.
    const mark = join(tempDir(), 'failed-once');
    const flaky = join(tempDir(), 'flaky-perl');
    writeFileSync(
      flaky,
      `#!/bin/sh\nif [ ! -e '${mark}' ]; then : > '${mark}'; exit 1; fi\nexec /usr/bin/perl "$@"\n`,
      {
        mode: 0o700,
      },
    );
    const { c, logged } = client(tempDir('lifeline-data-'), { perl: flaky, retryMinMs: 300 });
    const a = waiting(c);
    const { sup: supA } = await running(a.dir);
    expect(readFileSync(`/proc/${supA.pid}/cmdline`, 'utf8')).toContain('supervisor.sh');
    expect(logged).toEqual([expect.stringMatching(/could not be used \(it exited with 1\).*tried again in/)]);
    writeFileSync(a.go, '');
    expect(await exited(a.handle)).toBe(0);
    // Past the pause the runner is tried again, and serves.
    await new Promise((r) => setTimeout(r, 350));
    const b = waiting(c);
    const { sup: supB } = await running(b.dir);
    runners.push(parentOf(supB.pid));
    expect(readFileSync(`/proc/${parentOf(supB.pid)}/cmdline`, 'utf8')).toContain('runner.pl');
    expect(logged[1]).toBe('the perl runner answers again; attempts are started by it');
    writeFileSync(b.go, '');
    expect(await exited(b.handle)).toBe(0);
  });

  it('closed while connecting: the socket it got is let go with an error listener (an EPIPE is not uncaught)', async () => {
    const data = tempDir('lifeline-data-');
    const peer = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => peer.listen(join(data, runnerSocketName()), r));
    const sockets: net.Socket[] = [];
    const connect = net.connect;
    const spy = vi.spyOn(net, 'connect').mockImplementation(((...args: Parameters<typeof net.connect>) => {
      const s = connect(...args);
      sockets.push(s);
      return s;
    }) as typeof net.connect);
    try {
      const { c } = client(data, { perl: null });
      const h = c.start({ dir: join(tempDir(), 'run'), argv: ['true'], env: process.env, cwd: tempDir() });
      c.close(); // while the connect is under way
      expect(await exited(h)).toBe(0); // started by supervisor.sh instead
      await waitFor(
        () => sockets.length === 1 && (sockets[0].destroyed || sockets[0].writableEnded),
        'let go',
      );
      // What a peer that went away meanwhile makes the socket emit: must not be thrown.
      const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
      expect(() => sockets[0].emit('error', epipe)).not.toThrow();
    } finally {
      spy.mockRestore();
      peer.close();
    }
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
