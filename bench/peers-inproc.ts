// The old way, kept for comparison only (`npm run bench -- peers-inproc`): every peer and the raw-spawn
// baseline run INSIDE the bench process that also hosts the Lifeline engine, so each spawn forks that
// process and shares its event loop (issue 18). bench/peers.ts measures each in a process of its own.
//
// Peers on one Postgres (issue 8): the same number of jobs, 8 at a time, each spawning the same no-op,
// through Lifeline (engine on Postgres: attempts of a no-op plan), pg-boss 10, graphile-worker 0.16 and a
// raw spawn loop; rounds interleaved, medians reported. A throwaway cluster unless LIFELINE_BENCH_PG_URL.
//
// How each is driven, as a user would: Lifeline has no queue (one attempt per deployment at a time), so
// 8 deployments are each deployed again as soon as their attempt ends; the peers get all jobs enqueued in
// one call and 8 workers (pg-boss: 8 `work` loops at its shortest polling interval, 0.5 s;
// graphile-worker: concurrency 8, LISTEN/NOTIFY). The clock runs from the first submit to the last end.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { openLifeline, type Lifeline } from '../src/lifecycle/engine.ts';
import { adminQuery } from '../test/helpers/pg.ts';
import { pgDatabase, pgNote } from './pg.ts';
import { addRow, section } from './report.ts';
import { median } from './stats.ts';

const CONC = 8;
const NOOP = '/bin/true';
const ACTOR = { name: 'bench', role: 'admin' } as const;

function noop(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(NOOP, [], { stdio: 'ignore' });
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`no-op exited ${code}`))));
    c.once('error', reject);
  });
}

type Runner = { name: string; run(n: number): Promise<number>; close(): Promise<void> };

async function lifeline(tmp: string, url: string): Promise<Runner> {
  const dir = path.join(tmp, 'peers-lifeline');
  const config = configFromObject(
    { data_dir: dir, db: url, plans: { noop: { deploy: [NOOP], teardown: [NOOP] } } },
    { file: null, baseDir: dir, env: {} },
  );
  const engine: Lifeline = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  await engine.start();
  for (let i = 0; i < CONC; i++) await engine.createDeployment({ name: `p-${i}`, plan: 'noop' }, ACTOR);
  // attempt_end events, read once per commit wake (as a client of the stream would see them).
  const waiting = new Map<string, () => void>();
  let after = 0;
  let reading: Promise<void> | null = null;
  let again = false;
  const read = async () => {
    const rows = await engine.store.db
      .selectFrom('events')
      .select(['seq', 'attempt_id'])
      .where('seq', '>', after)
      .where('type', '=', 'attempt_end')
      .orderBy('seq')
      .execute();
    for (const r of rows) {
      after = Math.max(after, Number(r.seq));
      const w = waiting.get(r.attempt_id!);
      if (w) {
        waiting.delete(r.attempt_id!);
        w();
      }
    }
  };
  engine.onEvents(() => {
    if (reading) {
      again = true;
      return;
    }
    reading = (async () => {
      do {
        again = false;
        await read();
      } while (again);
      reading = null;
    })();
  });
  return {
    name: 'Lifeline (Postgres)',
    async run(n) {
      let left = n;
      await Promise.all(
        Array.from({ length: CONC }, async (_, i) => {
          while (left > 0) {
            left--;
            const a = await engine.startDeploy(`p-${i}`, {}, ACTOR);
            await new Promise<void>((resolve) => waiting.set(a.id, resolve));
            const x = await engine.getAttempt(a.id);
            if (x.state !== 'succeeded') throw new Error(`attempt ${a.id} ended ${x.state}`);
          }
        }),
      );
      return n;
    },
    close: () => engine.close(),
  };
}

async function pgBoss(url: string): Promise<Runner> {
  const { default: PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: url, max: CONC + 2, supervise: false, schedule: false });
  boss.on('error', () => undefined);
  await boss.start();
  const queue = 'noop';
  await boss.createQueue(queue);
  let done = 0;
  let onDone: (() => void) | null = null;
  for (let i = 0; i < CONC; i++) {
    await boss.work(queue, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async () => {
      await noop();
      done++;
      onDone?.();
    });
  }
  return {
    name: 'pg-boss 10',
    async run(n) {
      const target = done + n;
      const finished = new Promise<void>((resolve) => {
        onDone = () => {
          if (done >= target) resolve();
        };
      });
      await boss.insert(Array.from({ length: n }, (_, i) => ({ name: queue, data: { i } })));
      await finished;
      return n;
    },
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}

async function graphile(url: string): Promise<Runner> {
  const { run, Logger } = await import('graphile-worker');
  let done = 0;
  let onDone: (() => void) | null = null;
  const runner = await run({
    connectionString: url,
    concurrency: CONC,
    noHandleSignals: true,
    pollInterval: 2000,
    logger: new Logger(() => () => undefined),
    taskList: {
      noop: async () => {
        await noop();
        done++;
        onDone?.();
      },
    },
  });
  return {
    name: 'graphile-worker 0.16',
    async run(n) {
      const target = done + n;
      const finished = new Promise<void>((resolve) => {
        onDone = () => {
          if (done >= target) resolve();
        };
      });
      // One statement, as pg-boss's insert: graphile-worker's own SQL API.
      await adminQuery(
        url,
        `SELECT graphile_worker.add_job('noop', json_build_object('i', g)) FROM generate_series(1, $1::int) g`,
        [n],
      );
      await finished;
      return n;
    },
    close: () => runner.stop(),
  };
}

function raw(): Runner {
  return {
    name: 'raw spawn',
    async run(n) {
      let left = n;
      await Promise.all(
        Array.from({ length: CONC }, async () => {
          while (left > 0) {
            left--;
            await noop();
          }
        }),
      );
      return n;
    },
    close: async () => undefined,
  };
}

export async function benchPeersInProcess(tmp: string, quick: boolean): Promise<void> {
  const jobs = Number(process.env.BENCH_PEERS_JOBS ?? (quick ? 64 : 200));
  const rounds = quick ? 2 : 3;
  const runners: Runner[] = [];
  try {
    runners.push(await lifeline(tmp, await pgDatabase('bench_lifeline')));
    runners.push(await pgBoss(await pgDatabase('bench_pgboss')));
    runners.push(await graphile(await pgDatabase('bench_graphile')));
    runners.push(raw());
    for (const r of runners) await r.run(CONC); // warm up: schemas, pools, first spawns
    const rates = new Map<string, number[]>(runners.map((r) => [r.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const r of runners) {
        const t = performance.now();
        const n = await r.run(jobs);
        rates.get(r.name)!.push(n / ((performance.now() - t) / 1000));
      }
    }
    const s = section(
      `In-process peers (the old way: all in the bench process) on one Postgres: ${jobs} jobs, ${CONC} at a time, each spawning ${NOOP}`,
      ['runner', 'jobs/s (median)', 'rounds', 'Lifeline ÷ this', 'target'],
    );
    const ours = median(rates.get(runners[0].name)!);
    for (const r of runners) {
      const xs = rates.get(r.name)!;
      const m = median(xs);
      const target = r === runners[0] ? '' : r.name === 'raw spawn' ? '≥ 0.4' : '≥ 1.0';
      addRow(s, [
        r.name,
        m,
        xs.map((x) => x.toFixed(1)).join(', '),
        r === runners[0] ? '' : ours / m,
        target,
      ]);
    }
    s.notes.push(
      `${pgNote()}; one database per runner, all on the same server. Rounds interleaved (Lifeline, pg-boss, graphile-worker, raw) after one warm-up each.`,
      'Lifeline: 8 deployments, each deployed again when its attempt ends (attempt accepted → running → succeeded, every transition durable, exit record fsynced). pg-boss: all jobs inserted in one call, 8 `work` loops, batchSize 1, pollingIntervalSeconds 0.5 (its minimum; a loop that just finished a job waits out the rest of the interval). graphile-worker: all jobs added in one call, concurrency 8.',
    );
  } finally {
    for (const r of runners) await r.close().catch(() => undefined);
  }
}
