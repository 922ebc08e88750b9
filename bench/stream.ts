// Stream bench (issue 8 item 4) over real sockets on 127.0.0.1, with the clients in a child process:
// - commit-to-receipt p50/p99 for 20, 200 and 1,000 live subscribers while deployments are created
//   (from the commit's wake-up on the server to the frame's arrival at each client);
// - 500 clients connecting at once and replaying the whole history from 0 while /v1/health is timed
//   from a third process, next to the same 500 connections to a bare node:http server (the floor).
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { buildApp } from '../src/http/app.ts';
import { openLifeline, type Lifeline } from '../src/lifecycle/engine.ts';
import { buildDb } from './reads.ts';
import { median, percentile, type Row } from './stats.ts';

const ACTOR = { name: 'bench', role: 'admin' } as const;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function server(dir: string, url?: string) {
  const config = configFromObject(
    {
      data_dir: dir,
      db: url ?? `sqlite:${path.join(dir, 'lifeline.db')}`,
      durable_commits: false,
      plans: { ok: { deploy: ['/bin/true'], teardown: ['/bin/true'] } },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine: Lifeline = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  const app = await buildApp({ api: engine, config, logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return {
    engine,
    base: `http://127.0.0.1:${addr.port}`,
    close: async () => {
      await app.close();
      await engine.close();
    },
  };
}

function clients(args: {
  base: string;
  n: number;
  paths: string[];
  until?: number;
  hold?: boolean;
}): ChildProcess {
  return fork(path.join(import.meta.dirname, 'stream-clients.ts'), [JSON.stringify(args)], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => c.once('exit', () => resolve()));
}

function next<T>(child: ChildProcess, key: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (msg: Record<string, unknown>) => {
      if (key in msg) {
        child.off('message', on);
        resolve(msg[key] as T);
      }
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`stream clients exited (${code}) before ${key}`)));
  });
}

async function live(tmp: string, n: number, rounds: number, perRound: number): Promise<Row> {
  const s = await server(path.join(tmp, `live-${n}`));
  const commitAt = new Map<number, number>();
  let prev = 0;
  const off = s.engine.onEvents((lastSeq) => {
    if (lastSeq === undefined) return;
    const t = now();
    for (let q = prev + 1; q <= lastSeq; q++) commitAt.set(q, t);
    prev = Math.max(prev, lastSeq);
  });
  const child = clients({
    base: s.base,
    n,
    paths: [
      '/v1/events/stream',
      '/v1/events/stream',
      '/v1/events/stream?type=deployment_created,state_transition',
    ],
  });
  await next(child, 'ready');
  let k = 0;
  const create = () => s.engine.createDeployment({ name: `b-${n}-${k++}`, plan: 'ok' }, ACTOR);
  // Warm-up: every stream has replayed the (empty) history and gone live.
  await create();
  await sleep(1000);
  child.send({ report: true });
  await next(child, 'receipts');

  const p50s: number[] = [];
  const p99s: number[] = [];
  let missing = 0;
  for (let r = 0; r < rounds; r++) {
    const from = prev;
    for (let i = 0; i < perRound; i++) {
      await create();
      await sleep(20);
    }
    const to = prev;
    await sleep(1500);
    child.send({ report: true });
    const got = new Map(await next<[number, number[]][]>(child, 'receipts'));
    const xs: number[] = [];
    for (let q = from + 1; q <= to; q++) {
      const times = got.get(q) ?? [];
      missing += n - times.length;
      for (const t of times) xs.push(t - commitAt.get(q)!);
    }
    p50s.push(percentile(xs, 50));
    p99s.push(percentile(xs, 99));
  }
  off();
  child.send({ exit: true });
  await s.close();
  return {
    name: `commit-to-receipt, ${n} live subscribers`,
    p50: median(p50s),
    p99: median(p99s),
    target: n >= 500 ? 'p99 < 100 ms' : '',
    note: missing === 0 ? `all ${n} got every event` : `${missing} receipts MISSING`,
  };
}

function timeHealth(base: string): Promise<number> {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(`${base}/v1/health`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t));
      })
      .on('error', reject);
  });
}

/**
 * One storm: `n` clients (a child process) open their streams at the same moment, while /v1/health
 * is timed on fresh connections by another child process (an outside monitor) from that moment until
 * every client has seen seq `until`.
 */
async function storm(base: string, n: number, path_: string, until: number) {
  const child = clients({ base, n, paths: [path_], until, hold: true });
  const prober = fork(path.join(import.meta.dirname, 'stream-probe.ts'), [base], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await Promise.all([next(child, 'loaded'), next(prober, 'loaded')]);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const done = next<number>(child, 'done');
  prober.send({ go: true });
  child.send({ go: true });
  const full = await done;
  loop.disable();
  const latencies = next<number[]>(prober, 'latencies');
  prober.send({ stop: true });
  const xs = await latencies;
  await Promise.all([child, prober].map(exited));
  return { xs, stall: loop.max / 1e6, full };
}

function stormRow(name: string, rounds: Awaited<ReturnType<typeof storm>>[], note: string): Row {
  const all = rounds.flatMap((r) => r.xs);
  return {
    name,
    p50: median(rounds.map((r) => percentile(r.xs, 50))),
    p99: median(rounds.map((r) => percentile(r.xs, 99))),
    target: 'p99 < 200 ms',
    note:
      `max ${Math.max(...all).toFixed(0)} ms, longest loop stall ${Math.max(...rounds.map((r) => r.stall)).toFixed(0)} ms` +
      note,
  };
}

async function replayStorm(tmp: string, n: number, events: number, rounds: number): Promise<Row> {
  const dir = path.join(tmp, 'storm');
  const { url } = await buildDb(dir, 200, events);
  const s = await server(dir, url);
  await timeHealth(s.base); // a monitor has asked once since the restart; the streams route is cold
  const rs = [];
  for (let r = 0; r < rounds; r++) rs.push(await storm(s.base, n, '/v1/events/stream?after=0', events));
  await s.close();
  const full = median(rs.map((r) => r.full)) / 1000;
  return stormRow(
    `/v1/health while ${n} clients replay ${events.toLocaleString('en')} ev. from 0`,
    rs,
    `; all ${n} had the full history after ${full.toFixed(1)} s`,
  );
}

/**
 * The same storm against a bare node:http server that only sends each stream its headers and one
 * event: what the machine, the kernel and Node's own accept and parse cost before any Lifeline code.
 */
async function bareStorm(n: number, rounds: number): Promise<Row> {
  const frame = 'id: 1\nevent: ping\ndata: {}\n\n';
  const bare = http.createServer((req, res) => {
    if (req.url === '/v1/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"ok"}');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write(frame);
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const addr = bare.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  const base = `http://127.0.0.1:${addr.port}`;
  await timeHealth(base);
  const rs = [];
  for (let r = 0; r < rounds; r++) rs.push(await storm(base, n, '/stream', 1));
  bare.closeAllConnections();
  await new Promise((resolve) => bare.close(resolve));
  return { ...stormRow(`floor: the same ${n} connections to a bare node:http server`, rs, ''), target: '' };
}

export async function benchStream(tmp: string, quick: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const rounds = quick ? 2 : 3;
  const only = process.env.BENCH_STREAM; // live | storm, for profiling one part
  if (only !== 'storm')
    for (const n of [20, 200, 1000]) rows.push(await live(tmp, n, rounds, quick ? 15 : 30));
  if (only !== 'live') {
    rows.push(await replayStorm(tmp, 500, quick ? 1000 : 2000, quick ? 1 : 3));
    rows.push(await bareStorm(500, quick ? 1 : 3));
  }
  return rows;
}
