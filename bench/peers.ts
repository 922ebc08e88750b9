// Peers as their users run them (issue 18): each system in a process of its own, none inside the bench.
//   raw spawn         a small Node process spawning the no-op, 8 at a time (bench/procs/raw.mjs)
//   graphile-worker   a worker process, concurrency 8, jobs added with its SQL API (bench/procs/graphile.mjs)
//   pg-boss           a worker process, 8 work loops at its shortest polling (bench/procs/pgboss.mjs)
//   Lifeline          a `lifeline serve` process on SQLite and one on the same Postgres, driven over HTTP:
//                     8 deployments, each POSTed a new attempt as soon as its attempt_end is on the stream
// Same no-op (/bin/true), same parallelism, rounds interleaved, medians and per-round ratios. CPU per job
// from /proc/<pid>/stat: the process itself, what it reaped (Lifeline: its runner, the supervisors and
// the plans), and the Postgres backends serving its database.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { adminQuery } from '../test/helpers/pg.ts';
import { pgDatabase, pgNote } from './pg.ts';
import { addRow, section } from './report.ts';
import { Serve, cpuOf, type Cpu } from './serve.ts';
import { median } from './stats.ts';

const CONC = 8;
const HERE = import.meta.dirname;

interface Runner {
  name: string;
  run(n: number): Promise<void>;
  /** ms of CPU so far: the process, its children / runner, its Postgres backends */
  cpu(): Promise<Sample>;
  close(): Promise<void>;
}

/** The backends serving a database right now. */
async function backends(url: string | null): Promise<number[]> {
  if (!url) return [];
  const db = new URL(url).pathname.slice(1);
  const server = new URL(url);
  server.pathname = '/postgres';
  const rows = await adminQuery(server.toString(), 'SELECT pid FROM pg_stat_activity WHERE datname = $1', [
    db,
  ]);
  return rows.rows.map((r: { pid: number }) => Number(r.pid));
}

const total = (c: Cpu) => c.self + c.children;

/** CPU so far, ms: the process, its children or runner, and per Postgres backend pid. */
interface Sample {
  proc: number;
  children: number;
  db: Map<number, number>;
}

export async function dbCpu(url: string | null): Promise<Map<number, number>> {
  const m = new Map<number, number>();
  for (const pid of await backends(url)) m.set(pid, total(cpuOf(pid)));
  return m;
}

/** A backend that ended between the samples is left out; one that started counts from zero. */
export function dbDelta(a: Map<number, number>, b: Map<number, number>): number {
  let d = 0;
  for (const [pid, ms] of b) d += ms - (a.get(pid) ?? 0);
  return d;
}

async function worker(name: string, script: string, url: string | null): Promise<Runner> {
  const child: ChildProcess = fork(path.join(HERE, 'procs', script), url ? [url] : [], {
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onExit = (code: number) => reject(new Error(`${name} worker exited ${code}`));
      child.once('exit', onExit);
      child.once('message', (m: Record<string, unknown>) => {
        child.off('exit', onExit);
        if (m.error) reject(new Error(`${name}: ${String(m.error)}`));
        else resolve(m);
      });
    });
  await next(); // ready
  return {
    name,
    async run(n) {
      const answer = next();
      child.send({ run: n });
      await answer;
    },
    async cpu() {
      const c = cpuOf(child.pid!);
      return { proc: c.self, children: c.children, db: await dbCpu(url) };
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ stop: true });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

export async function lifelineServe(
  name: string,
  dir: string,
  db: string,
  pgUrl: string | null,
): Promise<Runner & { serve: Serve }> {
  const serve = await Serve.start({ dir, db });
  const names = Array.from({ length: CONC }, (_, i) => `p-${i}`);
  for (const n of names) await serve.create(n);
  return {
    name,
    serve,
    run: (n) => serve.run(names, n),
    async cpu() {
      const c = serve.cpu();
      return { proc: c.serve.self, children: total(c.runner), db: await dbCpu(pgUrl) };
    },
    close: () => serve.stop(),
  };
}

export async function benchPeers(tmp: string, quick: boolean): Promise<void> {
  const jobs = Number(process.env.BENCH_PEERS_JOBS ?? (quick ? 100 : 200));
  const rounds = Number(process.env.BENCH_PEERS_ROUNDS ?? (quick ? 3 : 5));
  const runners: Runner[] = [];
  try {
    const pgLifeline = await pgDatabase('bench_lifeline');
    const pgGraphile = await pgDatabase('bench_graphile');
    const pgBoss = await pgDatabase('bench_pgboss');
    const raw = await worker('raw spawn (own Node process)', 'raw.mjs', null);
    const sqlite = await lifelineServe(
      'Lifeline serve, SQLite',
      path.join(tmp, 'peers-sqlite'),
      `sqlite:${path.join(tmp, 'peers-sqlite', 'lifeline.db')}`,
      null,
    );
    const graphile = await worker('graphile-worker 0.16 (worker process)', 'graphile.mjs', pgGraphile);
    const boss = await worker('pg-boss 10 (worker process)', 'pgboss.mjs', pgBoss);
    const pgServe = await lifelineServe(
      'Lifeline serve, Postgres',
      path.join(tmp, 'peers-pg'),
      pgLifeline,
      pgLifeline,
    );
    runners.push(raw, sqlite, graphile, boss, pgServe);
    for (const r of runners) await r.run(CONC); // warm up: schemas, pools, the runner, JIT
    const rates = new Map<Runner, number[]>(runners.map((r) => [r, []]));
    const cpu = new Map<Runner, { proc: number; children: number; db: number }>(
      runners.map((r) => [r, { proc: 0, children: 0, db: 0 }]),
    );
    for (let round = 0; round < rounds; round++) {
      for (const r of runners) {
        const c0 = await r.cpu();
        const t = performance.now();
        await r.run(jobs);
        const rate = jobs / ((performance.now() - t) / 1000);
        const c1 = await r.cpu();
        const acc = cpu.get(r)!;
        acc.proc += c1.proc - c0.proc;
        acc.children += c1.children - c0.children;
        acc.db += dbDelta(c0.db, c1.db);
        rates.get(r)!.push(rate);
        console.log(`  round ${round + 1}: ${r.name} ${rate.toFixed(1)}/s`);
      }
    }
    const ratio = (a: Runner, b: Runner) => median(rates.get(a)!.map((x, i) => x / rates.get(b)![i]));
    const s = section(
      `Peers, each in its own process: ${jobs} jobs per round, ${CONC} at a time, each running /bin/true`,
      [
        'runner',
        'jobs/s (median)',
        'rounds',
        'CPU ms/job: process',
        'CPU ms/job: what it runs',
        'CPU ms/job: Postgres',
      ],
    );
    const n = jobs * rounds;
    for (const r of runners) {
      const xs = rates.get(r)!;
      const c = cpu.get(r)!;
      addRow(s, [
        r.name,
        median(xs),
        xs.map((x) => x.toFixed(1)).join(', '),
        c.proc / n,
        c.children / n,
        r === raw || r === sqlite ? '' : c.db / n,
      ]);
    }
    const t = section('Lifeline ÷ peers, each in its own process (median of per-round ratios)', [
      'ratio',
      'figure',
      'target',
    ]);
    addRow(t, ['Lifeline SQLite ÷ raw spawn', ratio(sqlite, raw), '≥ 0.4']);
    addRow(t, ['Lifeline Postgres ÷ graphile-worker', ratio(pgServe, graphile), '≥ 1.0']);
    addRow(t, ['Lifeline Postgres ÷ pg-boss', ratio(pgServe, boss), '≥ 1.0']);
    addRow(t, ['Lifeline Postgres ÷ raw spawn', ratio(pgServe, raw), '≥ 0.4']);
    addRow(t, [
      'server CPU per no-op attempt, SQLite',
      `${(cpu.get(sqlite)!.proc / n).toFixed(1)} ms`,
      '≤ 4 ms',
    ]);
    addRow(t, [
      'server CPU per no-op attempt, Postgres',
      `${(cpu.get(pgServe)!.proc / n).toFixed(1)} ms`,
      '≤ 5 ms',
    ]);
    s.notes.push(
      `${pgNote()}; one database per system, all on the same server. Rounds interleaved (raw, Lifeline SQLite, graphile-worker, pg-boss, Lifeline Postgres) after a warm-up of ${CONC} jobs each.`,
      'raw spawn: a small Node process of its own spawning /bin/true, 8 at a time. graphile-worker: a worker process (`run`, concurrency 8, LISTEN/NOTIFY); each round adds its jobs in one `graphile_worker.add_job` statement from that process. pg-boss: a worker process with 8 `work` loops, batchSize 1, pollingIntervalSeconds 0.5 (its minimum: a loop that finished a job waits out the rest of the interval); each round inserts its jobs with one `boss.insert`. The clock runs from the request to the last completion.',
      'Lifeline: `lifeline serve` (the sources through tsx, default log level, JSON logs to a file), driven over HTTP by the bench process: 8 deployments, each POSTed a new attempt as soon as its `attempt_end` arrives on one `GET /v1/events/stream?type=attempt_end` (accepted → running → succeeded, every transition durable, the exit record fsynced by its supervisor).',
      'CPU from /proc/<pid>/stat (utime+stime), per job over all rounds: "process" is the serve or worker process; "what it runs" is, for Lifeline, runner.pl with the supervisors and plans it reaped, for the others the no-ops they reaped; "Postgres" the backends connected to that system\'s database.',
    );
  } finally {
    for (const r of runners) await r.close().catch(() => undefined);
  }
}
