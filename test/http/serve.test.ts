// `lifeline serve` as a real process: loopback-only without auth, clean startup failures, the demo plan
// deployed and torn down over real HTTP, and a SIGTERM that leaves a running attempt running (the next
// start adopts it).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readProcess } from '../../src/runner/rundir.ts';
import { isLoopbackHost, serve, StartupError } from '../../src/server.ts';
import { dbUrlFor, DIALECTS, FIXTURES, tempDir, waitFor } from '../helpers/engine.ts';
import { lifelineArgv } from '../helpers/lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(ROOT, 'examples/plans/demo');

/**
 * The demo's steps are `sleep 1` each (13 s a deploy and teardown): a `sleep` first on the demo's PATH
 * makes each a tenth. What the test looks at (its lines, phases, states) is the same.
 */
const FAST_SLEEP = tempDir('lifeline-fast-sleep-');
fs.writeFileSync(
  path.join(FAST_SLEEP, 'sleep'),
  `#!/bin/sh\nexec ${fs.existsSync('/bin/sleep') ? '/bin/sleep' : '/usr/bin/sleep'} 0.1\n`,
  { mode: 0o755 },
);

function writeConfig(dir: string, extra = '', db = 'sqlite:./db/lifeline.db'): string {
  const file = path.join(dir, 'lifeline.yaml');
  fs.writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: 0 }
db: ${JSON.stringify(db)}
data_dir: ./data
reap_interval: 1s
plans:
  demo:
    deploy: ['${DEMO}/deploy.sh']
    teardown: ['${DEMO}/teardown.sh']
    check: ['${DEMO}/check.sh']
    env: { PATH: ${JSON.stringify(`${FAST_SLEEP}:${process.env.PATH ?? '/usr/bin:/bin'}`)} }
  sleep:
    deploy: ['${FIXTURES}/sleep.sh']
    teardown: ['${FIXTURES}/ok.sh']
    cancel_grace: 2s
    env: { SLEEP_SECONDS: '60' }
${extra}`,
  );
  return file;
}

interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const children: Child[] = [];
const strays: number[] = [];

function start(args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const proc = spawn(process.execPath, [...lifelineArgv(), ...args], {
    cwd: ROOT,
    env: { ...process.env, LIFELINE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (err += b));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const child = { proc, stdout: () => out, stderr: () => err, exited };
  children.push(child);
  return child;
}

async function listening(child: Child): Promise<string> {
  return waitFor(
    () => {
      if (child.proc.exitCode !== null) throw new Error(`server exited: ${child.stderr()}`);
      return /Lifeline listening on (http:\/\/[^"\s]+)/.exec(child.stdout())?.[1] ?? null;
    },
    'the server to listen',
    30_000,
  );
}

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  for (const pid of strays) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

describe('loopback only without auth', () => {
  it('knows its loopback hosts', () => {
    for (const h of [
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
      'localhost',
      'LOCALHOST',
      '::ffff:127.0.0.1',
    ]) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1', '::2']) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });

  it('serve() refuses a non-loopback host when no tokens are configured', async () => {
    const dir = tempDir('lifeline-serve-');
    await expect(serve({ configFile: writeConfig(dir), host: '0.0.0.0', env: {} })).rejects.toBeInstanceOf(
      StartupError,
    );
    await expect(serve({ configFile: writeConfig(dir), host: '0.0.0.0', env: {} })).rejects.toThrow(
      /refusing to listen on 0\.0\.0\.0 without authentication/,
    );
    expect(fs.existsSync(path.join(dir, 'db'))).toBe(false); // refused before opening anything
  });

  it('the CLI prints one line (no stack trace) and exits 1 on a refused host and a held lock, 2 on a bad config', async () => {
    const dir = tempDir('lifeline-serve-');
    const cfg = writeConfig(dir);
    const refused = start(['serve', '--config', cfg, '--host', '0.0.0.0']);
    expect(await refused.exited).toBe(1);
    expect(refused.stderr().trim().split('\n')).toHaveLength(1);
    expect(refused.stderr()).toMatch(/^lifeline serve: refusing to listen on 0\.0\.0\.0/);

    const badFile = path.join(dir, 'bad.yaml');
    fs.writeFileSync(badFile, 'plans:\n  demo:\n    deploy: "./x.sh --flag"\n');
    const bad = start(['serve', '--config', badFile]);
    expect(await bad.exited).toBe(2); // a config error is a usage error (docs/reference/cli.md)
    expect(bad.stderr()).toMatch(/^lifeline serve: .*bad\.yaml/);
    expect(bad.stderr()).not.toMatch(/\n\s+at /);

    // a second server on the same database
    const first = start(['serve', '--config', cfg, '--port', '0']);
    await listening(first);
    const second = start(['serve', '--config', cfg, '--port', '0']);
    expect(await second.exited).toBe(1);
    expect(second.stderr().trim().split('\n')).toHaveLength(1);
    expect(second.stderr()).toMatch(/another Lifeline server is using/);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });
});

describe.each(DIALECTS)('a real server (%s)', (dialect) => {
  it('deploys and tears down the demo plan over HTTP; SIGTERM leaves a running attempt running', async () => {
    const dir = tempDir('lifeline-serve-');
    const cfg = writeConfig(dir, '', dialect === 'sqlite' ? undefined : await dbUrlFor(dialect, dir));
    const server = start(['serve', '--config', cfg, '--port', '0']);
    const url = await listening(server);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(url + p, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
    };
    const stateOf = async (name: string) => (await call('GET', `/v1/deployments/${name}`)).body.state;

    expect((await call('GET', '/v1/health')).status).toBe(200);
    const created = await call('POST', '/v1/deployments', {
      name: 'demo-1',
      plan: 'demo',
      params: { replicas: 2 },
    });
    expect(created.status).toBe(201);
    const deploy = await call('POST', '/v1/deployments/demo-1/attempts');
    expect(deploy.status).toBe(202);
    await waitFor(async () => (await stateOf('demo-1')) === 'ready', 'demo-1 ready', 30_000);
    const events = (await call('GET', '/v1/deployments/demo-1/events?type=runner_event,log_line&limit=1000'))
      .body;
    const texts = events.items.filter((e: any) => e.type === 'log_line').map((e: any) => e.data.text);
    expect(texts).toContain('step 3/10: working');
    expect(events.items.some((e: any) => e.type === 'runner_event' && e.data.phase === 'provision')).toBe(
      true,
    );
    const td = await call('POST', '/v1/deployments/demo-1/teardown', { confirm: 'demo-1' });
    expect(td.status).toBe(202);
    await waitFor(async () => (await stateOf('demo-1')) === 'torn_down', 'demo-1 torn down', 15_000);

    // a long attempt, then SIGTERM: the server exits 0 and the attempt's process lives on
    await call('POST', '/v1/deployments', { name: 'sleeper', plan: 'sleep' });
    const att = (await call('POST', '/v1/deployments/sleeper/attempts')).body;
    await waitFor(
      async () => (await call('GET', `/v1/attempts/${att.id}`)).body.state === 'running',
      'sleeper running',
    );
    const pid = readProcess(path.join(dir, 'data', 'attempts', att.id))!.pid;
    strays.push(pid);
    server.proc.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toMatch(/"msg":"stopped"/);
    expect(() => process.kill(pid, 0)).not.toThrow();

    // the next start of the same instance adopts it: still running, and it can be cancelled
    const again = start(['serve', '--config', cfg, '--port', '0']);
    const url2 = await listening(again);
    const a = await (await fetch(`${url2}/v1/attempts/${att.id}`)).json();
    expect(a).toMatchObject({ state: 'running', recovered: false });
    const cancel = await fetch(`${url2}/v1/deployments/sleeper/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    await waitFor(
      async () => (await (await fetch(`${url2}/v1/attempts/${att.id}`)).json()).state === 'cancelled',
      'sleeper cancelled',
    );
    expect(() => process.kill(pid, 0)).toThrow();
    again.proc.kill('SIGINT');
    expect(await again.exited).toBe(0);

    // request log lines carry the trace id
    const line = server
      .stdout()
      .split('\n')
      .find((l) => l.includes('"url":"/v1/deployments/demo-1/teardown"'));
    expect(JSON.parse(line!)).toMatchObject({ trace_id: expect.any(String), status: 202, method: 'POST' });
  }, 120_000);
});
