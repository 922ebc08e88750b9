// A `lifeline serve` process of its own, driven as a user drives it: over its HTTP API (POST a deployment,
// POST an attempt), with completion seen on the event stream. Also the CPU of that process (and of the
// runner it started) from /proc, for the per-attempt cost.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../test/helpers/pg.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const TICK_MS = 1000 / 100; // CLK_TCK is 100 on Linux

export interface Cpu {
  /** utime + stime of the process itself, ms */
  self: number;
  /** stime alone (the kernel's share of self), ms */
  sys?: number;
  /** cutime + cstime: the children it has reaped (for the runner: supervisors and their plans), ms */
  children: number;
}

export function cpuOf(pid: number): Cpu {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields 14..17 of proc(5), counted from 1 with pid and comm as 1 and 2
    const [ut, st, cut, cst] = [f[11], f[12], f[13], f[14]].map(Number);
    return { self: (ut + st) * TICK_MS, sys: st * TICK_MS, children: (cut + cst) * TICK_MS };
  } catch {
    return { self: 0, children: 0 };
  }
}

export function sumCpu(pids: number[]): Cpu {
  const t = { self: 0, children: 0 };
  for (const p of pids) {
    const c = cpuOf(p);
    t.self += c.self;
    t.children += c.children;
  }
  return t;
}

/** The runner.pl serving that data dir (its cwd), if one runs. */
export function runnerPid(dataDir: string): number | null {
  const want = fs.realpathSync(dataDir);
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('runner.pl')) continue;
      if (fs.readlinkSync(`/proc/${d}/cwd`) === want) return Number(d);
    } catch {
      // gone or not ours
    }
  }
  return null;
}

export interface ServeOptions {
  dir: string;
  db: string;
  plans?: Record<string, unknown>;
  /** Extra node flags, e.g. --cpu-prof (also from $BENCH_SERVE_NODE_ARGS, space-separated). */
  nodeArgs?: string[];
  /** The checkout to run (default this one; $BENCH_LIFELINE_ROOT for an A/B against another tree). */
  root?: string;
}

export class Serve {
  private agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  private ended = new Map<string, (state: string) => void>();
  private early = new Map<string, string>();
  private stream: http.ClientRequest | null = null;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly dataDir: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(o: ServeOptions): Promise<Serve> {
    fs.mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const dataDir = path.join(o.dir, 'data');
    const port = await freePort();
    const config = {
      server: { host: '127.0.0.1', port },
      db: o.db,
      data_dir: dataDir,
      plans: o.plans ?? { noop: { deploy: ['/bin/true'], teardown: ['/bin/true'] } },
    };
    const file = path.join(o.dir, 'lifeline.yaml');
    fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    const log = fs.openSync(path.join(o.dir, 'serve.log'), 'a');
    const extra = o.nodeArgs ?? (process.env.BENCH_SERVE_NODE_ARGS?.split(' ').filter(Boolean) || []);
    // The sources through tsx's loader, in this one process (no wrapper process), as `npx lifeline` runs
    // them in a checkout; the default log level and JSON log format, to a file.
    const child = spawn(
      process.execPath,
      [
        ...extra,
        '--import',
        import.meta.resolve('tsx'), // from here: the child runs in its own dir
        path.join(o.root ?? process.env.BENCH_LIFELINE_ROOT ?? ROOT, 'src/cli/main.ts'),
        'serve',
        '--config',
        file,
        '--log-format',
        'json',
      ],
      { cwd: o.dir, stdio: ['ignore', log, log], env: { ...process.env, LIFELINE_CONFIG: file } },
    );
    fs.closeSync(log);
    const s = new Serve(child, port, dataDir);
    const until = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`lifeline serve exited ${child.exitCode}: see ${o.dir}`);
      try {
        const r = await s.request('GET', '/v1/health');
        if (r.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error(`lifeline serve did not answer: see ${o.dir}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    s.follow();
    return s;
  }

  request(method: string, url: string, body?: unknown): Promise<{ status: number; json: any }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path: url,
          agent: this.agent,
          headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown = null;
            try {
              json = text ? JSON.parse(text) : null;
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  /** One stream of attempt_end events for the whole run, as a dashboard or `deploy --follow` reads it. */
  private follow(): void {
    const req = http.get(
      { host: '127.0.0.1', port: this.port, path: '/v1/events/stream?type=attempt_end&after=0' },
      (res) => {
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          let at: number;
          while ((at = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, at);
            buf = buf.slice(at + 2);
            const line = frame.split('\n').find((l) => l.startsWith('data: '));
            if (!line) continue;
            const e = JSON.parse(line.slice(6)) as { attempt_id: string; data: { state: string } };
            const w = this.ended.get(e.attempt_id);
            if (w) {
              this.ended.delete(e.attempt_id);
              w(e.data.state);
            } else this.early.set(e.attempt_id, e.data.state);
          }
        });
        res.on('error', () => undefined);
      },
    );
    req.on('error', () => undefined);
    this.stream = req;
  }

  /** The attempt's end state, once its attempt_end is on the stream. */
  end(attemptId: string): Promise<string> {
    const seen = this.early.get(attemptId);
    if (seen !== undefined) {
      this.early.delete(attemptId);
      return Promise.resolve(seen);
    }
    return new Promise((resolve) => this.ended.set(attemptId, resolve));
  }

  async create(name: string, plan = 'noop'): Promise<void> {
    const r = await this.request('POST', '/v1/deployments', { name, plan });
    if (r.status !== 201) throw new Error(`create ${name}: ${r.status} ${JSON.stringify(r.json)}`);
  }

  /** Attempts that did not succeed, when run() is told to count them instead of throwing. */
  failed: string[] = [];

  /** POST an attempt and wait for its end on the stream; throws unless it succeeded (or counts it). */
  async deploy(name: string, countFailures = false): Promise<void> {
    const r = await this.request('POST', `/v1/deployments/${name}/attempts`, {});
    if (r.status !== 202) throw new Error(`deploy ${name}: ${r.status} ${JSON.stringify(r.json)}`);
    const state = await this.end(r.json.id);
    if (state === 'succeeded') return;
    if (!countFailures) throw new Error(`attempt ${r.json.id} of ${name} ended ${state}`);
    this.failed.push(r.json.id);
  }

  /** `names` deployments each deployed again as soon as its attempt ends, until n attempts have run. */
  async run(names: string[], n: number, countFailures = false): Promise<void> {
    let left = n;
    await Promise.all(
      names.map(async (name) => {
        while (left > 0) {
          left--;
          await this.deploy(name, countFailures);
        }
      }),
    );
  }

  /** The serve process's CPU and its runner's (runner, supervisors and plans). */
  cpu(): { serve: Cpu; runner: Cpu } {
    const r = runnerPid(this.dataDir);
    return { serve: cpuOf(this.pid), runner: r ? cpuOf(r) : { self: 0, children: 0 } };
  }

  async stop(): Promise<void> {
    this.stream?.destroy();
    this.agent.destroy();
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}
