// Runs `lifeline` commands against a real `lifeline serve` started by the test, on a free port, with a
// temp config whose plans are fixture scripts and whose database and data dir are in a temp dir. The
// server is the compiled JavaScript (dist/, built once per test run by test/helpers/build.ts).
// A client command runs in-process by default (`cli`, `startCli`: src/cli/run.ts's runCli, with the
// environment and streams of its own, as the binary has them when piped): a node process per command
// cost each up to a second of CPU. `binCli` and `spawnCli` run the real binary, for what only a process
// shows: its exit status, signals, a terminal, a closed pipe.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/run.ts';
import { tempConfig, tempDir as makeTempDir, writeConfigFile } from '../helpers/config.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
/** What an installed `lifeline` runs (bin/lifeline.js in a checkout would run the sources with tsx). */
export const BIN = path.join(ROOT, 'dist/cli/main.js');
if (!fs.existsSync(BIN)) {
  throw new Error(
    `${BIN} is missing: tests that use test/cli/helpers.ts run in vitest's "build" project, which builds it`,
  );
}
const PLANS = path.join(ROOT, 'test/fixtures/plans');
const CLI_FIXTURES = path.join(ROOT, 'test/cli/fixtures');

const plan = (f: string) => [path.join(PLANS, f)];
const mine = (f: string) => [path.join(CLI_FIXTURES, f)];

/** The plans the CLI tests use. */
export function cliPlans(): Record<string, unknown> {
  return {
    ok: {
      description: 'always succeeds',
      deploy: plan('ok.sh'),
      teardown: plan('ok.sh'),
      check: plan('check.sh'),
    },
    fail: { description: 'always fails', deploy: plan('fail.sh'), teardown: plan('fail.sh') },
    sleep: {
      description: 'sleeps 30 s',
      deploy: plan('sleep.sh'),
      teardown: plan('ok.sh'),
      check: plan('check.sh'),
      cancel_grace: '2s',
      env: { SLEEP_SECONDS: '30' },
    },
    ticker: {
      description: 'prints numbered lines over a few seconds',
      deploy: mine('ticker.sh'),
      teardown: plan('ok.sh'),
      env: { TICKS: '16', TICK_SECONDS: '0.25' },
    },
    slow_ticker: {
      // Long enough for a server restart in the middle (restart.test.ts, stack-run.test.ts), even loaded.
      description: 'prints numbered lines over six seconds',
      deploy: mine('ticker.sh'),
      teardown: plan('ok.sh'),
      env: { TICKS: '20', TICK_SECONDS: '0.3' },
    },
    ctl: {
      description: 'waits for the test to write its exit code',
      deploy: plan('ctl.sh'),
      teardown: plan('ctl.sh'),
    },
    ticker_fail: {
      deploy: mine('ticker.sh'),
      teardown: plan('ok.sh'),
      env: { TICKS: '8', TICK_SECONDS: '0.25', TICK_RC: '1' },
    },
    quick: { deploy: mine('ticker.sh'), teardown: mine('ticker.sh'), env: { TICKS: '3', TICK_SECONDS: '0' } },
    params: {
      description: 'echoes its params',
      deploy: plan('params.sh'),
      teardown: plan('ok.sh'),
      params: {
        type: 'object',
        properties: {
          replicas: { type: 'integer', minimum: 1 },
          ratio: { type: 'number' },
          debug: { type: 'boolean' },
          tags: { type: 'array', items: { type: 'string' } },
          extra: { type: ['object', 'null'] },
          name: { type: 'string' },
        },
        additionalProperties: false,
      },
    },
  };
}

export function tempDir(prefix = 'lifeline-cli-'): string {
  return makeTempDir(prefix);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The environment for children: ours without any LIFELINE_ or colour settings, plus `extra`. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('LIFELINE_') || k === 'NO_COLOR' || k === 'FORCE_COLOR') continue;
    env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

export async function waitFor<T>(
  fn: () => Promise<T> | T,
  what: string,
  timeoutMs = 30_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${String(lastErr)})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class TestServer {
  proc: ChildProcess | null = null;
  /** Extra environment for the next boot() (e.g. a test-only crash point). */
  env: Record<string, string> = {};
  private logFd: number | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly configFile: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  static async start(
    plans: Record<string, unknown> = cliPlans(),
    config: Record<string, unknown> = {},
  ): Promise<TestServer> {
    const dir = tempDir();
    const port = await freePort();
    const configFile = writeConfigFile(
      dir,
      tempConfig(dir, {
        plans,
        extra: { server: { host: '127.0.0.1', port }, reap_interval: '1s', ...config },
      }),
    );
    const s = new TestServer(dir, port, configFile);
    await s.boot();
    return s;
  }

  /** Starts `lifeline serve` (again, after stop(): same port, database and data dir). */
  async boot(): Promise<void> {
    if (this.proc) throw new Error('server already running');
    this.logFd = fs.openSync(path.join(this.dir, 'server.log'), 'a');
    const proc = spawn(process.execPath, [BIN, 'serve', '--config', this.configFile], {
      cwd: this.dir,
      env: cleanEnv({ LIFELINE_LOG_LEVEL: 'warn', ...this.env }),
      stdio: ['ignore', this.logFd, this.logFd],
    });
    this.proc = proc;
    // A server that exits before it answers fails the boot at once, with its log, instead of being
    // polled for the rest of the minute.
    let exited = false;
    const early = new Promise<never>((_resolve, reject) =>
      proc.once('exit', (code, signal) => {
        exited = true;
        const log = path.join(this.dir, 'server.log');
        let text = '';
        try {
          text = fs.readFileSync(log, 'utf8').slice(-4000);
        } catch {
          // no log written
        }
        reject(new Error(`lifeline serve exited early (${signal ?? `code ${code}`}); ${log}:\n${text}`));
      }),
    );
    early.catch(() => undefined);
    await Promise.race([
      early,
      waitFor(
        async () => {
          if (exited) return true;
          const res = await fetch(`${this.url}/v1/health`).catch(() => null);
          return res?.ok === true;
        },
        'the server to answer /v1/health',
        60_000,
      ),
    ]);
    if (exited) await early;
  }

  /** Stops the server with `signal` and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(timer);
    }
    this.proc = null;
    if (this.logFd !== null) fs.closeSync(this.logFd);
    this.logFd = null;
  }

  /** A request to the server; `token` is sent as a bearer token (servers with auth). */
  async api<T = unknown>(method: string, p: string, body?: unknown, token?: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const res = await fetch(`${this.url}${p}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** The run dir of an attempt: supervisor, process, exit, stdout… */
  runDir(attemptId: string): string {
    return path.join(this.dataDir, 'attempts', attemptId);
  }

  /** Ends a `ctl` plan's attempt: writes the exit code into the control FIFO it is reading. */
  async release(deploymentId: string, rc: number): Promise<void> {
    const fifo = path.join(this.dataDir, 'workspaces', deploymentId, 'ctl');
    await waitFor(() => fs.existsSync(fifo), 'the control FIFO');
    await fs.promises.writeFile(fifo, `${rc}\n`);
  }

  /** Kills an attempt's supervisor and plan process groups, so that its outcome is lost. */
  async loseAttempt(attemptId: string): Promise<void> {
    const dir = this.runDir(attemptId);
    const pidOf = (f: string) => {
      try {
        const pid = Number(fs.readFileSync(path.join(dir, f), 'utf8').trim().split(/\s+/)[0]);
        return pid > 1 ? pid : null;
      } catch {
        return null;
      }
    };
    const sup = await waitFor(() => pidOf('supervisor'), 'the supervisor record');
    const proc = await waitFor(() => pidOf('process'), 'the process record');
    for (const pid of [sup, proc]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Waits until `out()` matches `re`; fails at once when the command ends without printing it. */
async function waitForText(
  out: () => string,
  err: () => string,
  done: Promise<unknown>,
  re: RegExp,
  what: string,
  timeoutMs: number,
): Promise<void> {
  let ended = false;
  void done.then(() => (ended = true));
  await waitFor(
    () => {
      if (re.test(out())) return true;
      if (ended) throw new Error(`exited before printing ${what}:\n${out()}\n${err()}`);
      return false;
    },
    `${what} in the output; so far:\n${out()}\n${err()}`,
    timeoutMs,
  );
}

/** A running `lifeline …` process: output so far, and a way to wait for some of it. */
export class CliProcess {
  stdout = '';
  stderr = '';
  readonly proc: ChildProcess;
  readonly done: Promise<CliResult>;

  constructor(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number } = {}) {
    this.proc = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout += d));
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), opts.timeoutMs ?? 90_000);
    this.done = new Promise((resolve) => {
      this.proc.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout: this.stdout, stderr: this.stderr });
      });
    });
  }

  waitForOutput(re: RegExp, what = String(re), timeoutMs = 30_000): Promise<void> {
    return waitForText(
      () => this.stdout,
      () => this.stderr,
      this.done,
      re,
      what,
      timeoutMs,
    );
  }
}

/** A stream that appends what is written to it (not a terminal, like a pipe). */
function sink(append: (text: string) => void): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _enc, cb) {
      append(chunk.toString());
      cb();
    },
  });
}

/** A `lifeline …` running in this process (runCli): output so far, and a way to wait for some of it. */
export class InProcessCli {
  stdout = '';
  stderr = '';
  readonly done: Promise<CliResult>;

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    const stdout = sink((t) => (this.stdout += t));
    const stderr = sink((t) => (this.stderr += t));
    this.done = runCli(args, { env, stdout, stderr }).then((code) => {
      if (code === null) throw new Error(`lifeline ${args.join(' ')} did not end with an exit code`);
      return { code, signal: null, stdout: this.stdout, stderr: this.stderr };
    });
  }

  waitForOutput(re: RegExp, what = String(re), timeoutMs = 30_000): Promise<void> {
    return waitForText(
      () => this.stdout,
      () => this.stderr,
      this.done,
      re,
      what,
      timeoutMs,
    );
  }
}

export function cliEnv(server: { url: string } | string, extra: Record<string, string | undefined> = {}) {
  return cleanEnv({ LIFELINE_URL: typeof server === 'string' ? server : server.url, ...extra });
}

/** Runs `lifeline …` to its end, in this process. */
export function cli(
  server: { url: string } | string,
  args: string[],
  extra: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return new InProcessCli(args, cliEnv(server, extra)).done;
}

/** Starts `lifeline …` in this process; its output grows as it runs. */
export function startCli(
  server: { url: string } | string,
  args: string[],
  extra: Record<string, string | undefined> = {},
): InProcessCli {
  return new InProcessCli(args, cliEnv(server, extra));
}

/** Runs the real `lifeline` binary to its end. */
export function binCli(
  server: { url: string } | string,
  args: string[],
  extra: Record<string, string | undefined> = {},
): Promise<CliResult> {
  return new CliProcess(args, cliEnv(server, extra)).done;
}

/** Starts the real `lifeline` binary (to signal it, or to see what only a process shows). */
export function spawnCli(
  server: { url: string } | string,
  args: string[],
  extra: Record<string, string | undefined> = {},
): CliProcess {
  return new CliProcess(args, cliEnv(server, extra));
}

/** Lines of `text` equal to `line`, once the live view's `[mm:ss] ` stamp is taken off. */
export function count(text: string, line: string): number {
  return text.split('\n').filter((l) => l.replace(/^\[[\d:]+\] /, '') === line).length;
}
