// A real `lifeline serve` for the browser tests and the screenshot script: its own process, config file,
// SQLite database and data dir, on a port the OS picks; plus a small API client and the chromium launcher.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { CHROMIUM } from '../helpers/chromium.ts';
import { tempConfig, tempDir, writeConfigFile } from '../helpers/config.ts';
import { lifelineArgv } from '../helpers/lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(ROOT, 'test/fixtures/plans');
export const STEPS = path.join(import.meta.dirname, 'fixtures/steps.sh');

/** Plans for the dashboard: a deploy that takes ~1.5 s and logs as it goes, a long sleeper, a failure. */
export function dashboardPlans(): Record<string, unknown> {
  return {
    steps: {
      description: 'Five steps, 0.3 s apart, each logged',
      deploy: [STEPS],
      teardown: [STEPS],
      check: [path.join(FIXTURES, 'check.sh')],
      verify: { teardown: false }, // steps.sh leaves nothing for the check to find gone
      env: { STEPS: '5', STEP_DELAY: '0.3' },
      params: {
        type: 'object',
        properties: {
          replicas: { type: 'integer', minimum: 1, maximum: 10, description: 'how many copies' },
          tier: { type: 'string', enum: ['small', 'large'] },
        },
        additionalProperties: false,
      },
    },
    sleep: {
      description: 'Sleeps for a minute (for lost outcomes)',
      deploy: [path.join(FIXTURES, 'sleep.sh')],
      teardown: [path.join(FIXTURES, 'ok.sh')],
      env: { SLEEP_SECONDS: '60' },
      cancel_grace: '1s',
    },
    broken: {
      description: 'Fails after two steps',
      deploy: [STEPS],
      teardown: [STEPS],
      env: { STEPS: '2', STEP_DELAY: '0.2', FAIL_RC: '2' },
    },
  };
}

export const TOKENS = {
  viewer: 'viewer-token-e2e',
  operator: 'operator-token-e2e',
  admin: 'admin-token-e2e',
};
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

export interface ServerOptions {
  plans?: Record<string, unknown>;
  /** Tokens for viewer, operator and admin (TOKENS). */
  auth?: boolean;
  /** Keep the data dir after stop (the screenshot script does not need it either). */
  keep?: boolean;
  /** Further top-level config (webhooks…), and environment for the server (their secrets). */
  extra?: Record<string, unknown>;
  env?: Record<string, string>;
}

export interface RunningServer {
  url: string;
  dataDir: string;
  proc: ChildProcess;
  output: () => string;
  stop(): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const dir = tempDir('lifeline-e2e-');
  const config = tempConfig(dir, {
    plans: opts.plans ?? dashboardPlans(),
    extra: { server: { host: '127.0.0.1', port: 0 }, reap_interval: '1s', ...opts.extra },
  });
  if (opts.auth) {
    config.auth = {
      tokens: Object.entries(TOKENS).map(([role, token]) => ({
        name: `${role}-e2e`,
        role,
        token_sha256: sha256(token),
      })),
    };
  }
  const file = writeConfigFile(dir, config);

  const proc = spawn(process.execPath, [...lifelineArgv(), 'serve', '--config', file], {
    cwd: ROOT,
    env: { ...process.env, LIFELINE_LOG_LEVEL: 'info', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));

  const url = await new Promise<string>((resolve, reject) => {
    // A server that never says it listens is killed, or it outlives the test run holding its port and data.
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`server did not start in 30 s:\n${out}`));
    }, 30_000);
    const onData = () => {
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          const rec = JSON.parse(line) as { url?: string; msg?: string };
          if (rec.url && rec.msg?.startsWith('Lifeline listening')) {
            clearTimeout(timer);
            resolve(rec.url);
            return;
          }
        } catch {
          /* a partial line */
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });

  return {
    url,
    dataDir: path.join(dir, 'data'),
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal JSON client for arranging state through the API. */
export function client(base: string, token?: string) {
  return async function call<T = any>(method: string, p: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${p}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  };
}

/** Makes an attempt's outcome lost: kills its supervisor and the plan's process group (SIGKILL). */
export function killAttempt(dataDir: string, attemptId: string): void {
  const runDir = path.join(dataDir, 'attempts', attemptId);
  for (const id of [readSupervisor(runDir), readProcess(runDir)]) {
    if (!id) throw new Error(`no process identity in ${runDir}`);
    try {
      process.kill(-id.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export async function waitUntil<T>(
  fn: () => Promise<T> | T,
  what: string,
  timeoutMs = 15_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Debian's Chromium headless shell (never a downloaded browser build); Playwright passes --headless. */
export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium-headless-shell`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--force-prefers-reduced-motion',
    ],
  });
}
