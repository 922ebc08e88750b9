// Issue 17.2: nothing another local user made is trusted. A data dir another uid owns is refused at
// start (serve exits 2 naming the path and owner); a runner socket another uid bound is never connected
// to, so no launch request (with its raw params) reaches it; the runner closes a client of another uid.
// Making files of another uid needs root (as CI runs); `nobody` is the other user.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline } from '../../src/lifecycle/engine.ts';
import { ShLauncher } from '../../src/runner/launcher.ts';
import { assertOwnedDir, UnsafePath } from '../../src/runner/owned.ts';
import { readSupervisor } from '../../src/runner/rundir.ts';
import { RunnerClient, runnerSocketName } from '../../src/runner/runner-client.ts';
import { writeConfigFile, tempConfig } from '../helpers/config.ts';
import { quietLogger, testConfig } from '../helpers/engine.ts';
import { removeTempDirs, tempDir, waitFor } from './helpers.ts';

const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;
const ROOT = resolve(import.meta.dirname, '../..');

const clients: RunnerClient[] = [];
const servers: net.Server[] = [];
const runners: number[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.close();
  for (const pid of runners.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  removeTempDirs();
});

const parentOf = (pid: number) => {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]);
};

describe('paths another user made', () => {
  it('a run dir that is a symlink is refused', () => {
    const dir = tempDir();
    symlinkSync(tempDir(), join(dir, 'run'));
    expect(() => assertOwnedDir(join(dir, 'run'), 'run dir')).toThrow(/run dir .*run is a symlink/);
  });

  it.runIf(asRoot)(
    'a data dir another uid owns is refused at start, naming the path and the owner',
    async () => {
      const dir = tempDir('lifeline-data-');
      chownSync(dir, NOBODY, NOBODY);
      const err = await openLifeline({ config: testConfig(dir), logger: quietLogger() }).catch((e) => e);
      expect(err).toBeInstanceOf(UnsafePath);
      expect(err.message).toBe(
        `data_dir ${dir} is owned by uid ${NOBODY} (nobody), not by this server's uid 0 (root): ` +
          'refusing to keep secrets or talk to a runner there',
      );
      expect(existsSync(join(dir, 'instance.json'))).toBe(false);
      expect(existsSync(join(dir, 'lifeline.lock'))).toBe(false);
    },
  );

  it.runIf(asRoot)(
    '`lifeline serve` on such a data dir exits 2 with the path and the owner',
    async () => {
      const dir = tempDir();
      const data = join(dir, 'data');
      mkdirSync(data);
      chownSync(data, NOBODY, NOBODY);
      const file = writeConfigFile(dir, tempConfig(dir, { plans: {}, extra: { server: { port: 0 } } }));
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'serve', '--config', file],
        {
          cwd: ROOT,
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const kill = setTimeout(() => child.kill('SIGKILL'), 25_000); // a server that started anyway
      const code = await new Promise((r) => child.on('exit', r));
      clearTimeout(kill);
      expect(code).toBe(2);
      expect(stderr).toContain(`lifeline serve: data_dir ${data} is owned by uid ${NOBODY} (nobody)`);
    },
    30_000,
  );

  it.runIf(asRoot)(
    'a listener of another uid on the runner socket gets no connection, and no params',
    async () => {
      const data = tempDir('lifeline-data-');
      const sock = join(data, runnerSocketName());
      const received: string[] = [];
      let connections = 0;
      const fake = net.createServer((s) => {
        connections++;
        s.on('data', (d) => received.push(d.toString()));
      });
      servers.push(fake);
      await new Promise<void>((r) => fake.listen(sock, r));
      chownSync(sock, NOBODY, NOBODY);
      const logged: string[] = [];
      const c = new RunnerClient(data, new ShLauncher(), { log: (m) => logged.push(m) });
      clients.push(c);
      const run = join(tempDir(), 'run');
      const h = c.start({
        dir: run,
        argv: ['true'],
        env: { PATH: '/usr/bin:/bin', SECRET_PARAM: 'hunter2' },
        cwd: tempDir(),
      });
      const code = await new Promise((r) => {
        h.once('exit', r);
        setTimeout(() => r('no start'), 10_000); // a fake that never answers
      });
      expect(code).toBe(0);
      const sup = readSupervisor(run)!;
      expect(sup).not.toBeNull();
      expect(logged[0]).toContain(`refusing ${sock}: it is owned by uid ${NOBODY} (nobody)`);
      expect(connections).toBe(0);
      expect(received).toEqual([]);
    },
  );

  it.runIf(asRoot)('the runner closes a client of another uid without starting anything', async () => {
    const data = tempDir('lifeline-data-');
    const c = new RunnerClient(data, new ShLauncher(), {});
    clients.push(c);
    const run = join(tempDir(), 'run');
    c.start({ dir: run, argv: ['sleep', '5'], env: process.env, cwd: tempDir() });
    const sup = await waitFor(() => readSupervisor(run), 'supervisor file');
    const runner = parentOf(sup.pid);
    runners.push(runner, sup.pid);
    expect(readFileSync(`/proc/${runner}/cmdline`, 'utf8')).toContain('runner.pl');
    // Opened up as a careless admin might: now another user can reach the socket.
    chmodSync(data, 0o711);
    chmodSync(join(data, runnerSocketName()), 0o777);
    const target = join(tempDir(), 'forged');
    mkdirSync(target);
    chmodSync(target, 0o777);
    const script = `
      const net = require('node:net');
      const s = net.connect(${JSON.stringify(join(data, runnerSocketName()))});
      const f = ['L', 'x1', ${JSON.stringify(target)}, '/', '1', 'true', '0'].map((x) => x + '\\0').join('');
      s.on('connect', () => s.write(Buffer.byteLength(f) + '\\n' + f));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('error', (e) => (got += 'error ' + e.code));
      s.on('close', () => process.stdout.write(JSON.stringify(got), () => process.exit(0)));
      setTimeout(() => { process.stdout.write(JSON.stringify('no close: ' + got)); process.exit(0); }, 5000);
    `;
    const r = spawnSync(process.execPath, ['-e', script], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
    // Closed unanswered (an EPIPE if it was closed before the request was written).
    expect(JSON.parse(r.stdout)).toMatch(/^(|error EPIPE|error ECONNRESET)$/);
    expect(existsSync(join(target, 'supervisor'))).toBe(false);
  });
});
