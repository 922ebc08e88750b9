// Real `lifeline serve` processes for multi-instance tests and the chaos run: each with its own config
// file and data dir, any store, optional environment (LIFELINE_CLOCK_OFFSET_MS) and an optional argv
// prefix (e.g. a private mount namespace). No shell sees test input: every command is an argv.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { fixturePlans } from './engine.ts';
import { lifelineArgv } from './lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface ServeOptions {
  db: string;
  dataDir: string;
  /** Config keys beside server/db/data_dir/plans (lease_ttl, reap_interval…). */
  extra?: Record<string, unknown>;
  plans?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Argv the node command is appended to, e.g. a mount-namespace wrapper. */
  wrap?: string[];
  /** Fixed port (a restart keeps its URL); 0 lets the OS pick. */
  port?: number;
}

export interface Served {
  url: string;
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** SIGKILL, as a crash: nothing runs on the way out. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Starts a server and resolves once it listens; rejects with its output when it exits first. */
export async function serve(o: ServeOptions): Promise<Served> {
  const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-serve-'));
  const file = path.join(cfgDir, 'lifeline.yaml');
  fs.writeFileSync(
    file,
    stringify({
      server: { host: '127.0.0.1', port: o.port ?? 0 },
      db: o.db,
      data_dir: o.dataDir,
      plans: o.plans ?? fixturePlans(),
      ...o.extra,
    }),
  );
  const argv = [process.execPath, ...lifelineArgv(), 'serve', '--config', file];
  const [cmd, ...args] = [...(o.wrap ?? []), ...argv];
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, LIFELINE_LOG_LEVEL: 'info', NO_COLOR: '1', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<number | null>((r) =>
    proc.once('exit', (code) => {
      running.delete(proc);
      r(code);
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not listen in 180 s:\n${out}`)), 180_000);
    const look = () => {
      const m = /Lifeline listening on (http:\/\/[^"\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', look);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
  const end = async (sig: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill(sig);
      await exited;
    }
  };
  return {
    url,
    proc,
    output: () => out,
    exited,
    crash: () => end('SIGKILL'),
    stop: () => end('SIGTERM'),
  };
}

/** Kills every server this module started that is still running (afterAll). */
export async function killAllServers(): Promise<void> {
  await Promise.all(
    [...running].map(
      (p) =>
        new Promise<void>((r) => {
          p.once('exit', () => r());
          p.kill('SIGKILL');
        }),
    ),
  );
}

/** A JSON call that returns the status and body, never throws on a 4xx/5xx. */
export async function call(
  base: string,
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}
