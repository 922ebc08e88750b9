// Gates bench (SPEC §13.1): N no-op attempts queued on one concurrency key of limit 1, behind a holder
// that sleeps a few seconds. Measures the server's CPU while they all wait (nothing polls a waiting
// attempt), then each slot hand-over: from one attempt's end (attempt_end, which frees the slot) to the
// next one's gate_opened (the slot granted) and to its attempt_start (its process running), from the
// events' own timestamps. SQLite and Postgres, one after the other.
//   npx tsx bench/gates.ts [N=200]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { openLifeline } from '../src/lifecycle/engine.ts';
import { closePg, pgDatabase } from './pg.ts';
import { percentile } from './stats.ts';

const N = Number(process.argv[2] ?? 200);
const FIXTURES = path.resolve(import.meta.dirname, '../test/fixtures/plans');
const ACTOR = { name: 'bench', role: 'operator' } as const;

async function run(store: 'sqlite' | 'postgres'): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-bench-gates-'));
  const db = store === 'sqlite' ? `sqlite:${path.join(dir, 'lifeline.db')}` : await pgDatabase('bench_gates');
  const config = configFromObject(
    {
      db,
      data_dir: dir,
      durable_commits: false,
      plans: {
        hold: {
          deploy: [path.join(FIXTURES, 'sleep.sh')],
          teardown: [path.join(FIXTURES, 'ok.sh')],
          env: { SLEEP_SECONDS: '16' },
          concurrency: { key: 'one', limit: 1 },
        },
        noop: {
          deploy: [path.join(FIXTURES, 'ok.sh')],
          teardown: [path.join(FIXTURES, 'ok.sh')],
          concurrency: { key: 'one', limit: 1 },
        },
      },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  await engine.start();
  try {
    await engine.createDeployment({ name: 'holder', plan: 'hold' }, ACTOR);
    for (let i = 0; i < N; i++) await engine.createDeployment({ name: `q-${i}`, plan: 'noop' }, ACTOR);
    await engine.startDeploy('holder', {}, ACTOR);
    for (let i = 0; i < N; i++) await engine.startDeploy(`q-${i}`, {}, ACTOR);
    const waiting = (await engine.listWaitingAttempts({})).items.length;
    // CPU while every attempt waits (the holder still sleeps): over 3 s of wall time, after 8 s for the
    // accepts' own after-work (garbage collection, the metrics pump) to settle: on Postgres that tail
    // alone read as ~15 % of a core when measured 2 s after the burst.
    await new Promise((r) => setTimeout(r, 8_000));
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 3_000));
    const used = process.cpuUsage(cpu0);
    const idlePct = ((used.user + used.system) / 1000 / (performance.now() - t0)) * 100;

    const began = performance.now();
    for (;;) {
      const left = (await engine.listWaitingAttempts({})).items.length;
      const last = (await engine.getDeployment(`q-${N - 1}`)).state;
      if (left === 0 && last !== 'deploying') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const total = performance.now() - began;

    const events: {
      seq: number;
      type: string;
      at: string;
      attempt_id: string | null;
      data: Record<string, unknown>;
    }[] = [];
    for (let after = 0; ;) {
      const page = await engine.listEvents({
        after,
        limit: 1000,
        types: ['attempt_end', 'gate_opened', 'attempt_start'],
      });
      events.push(...page.items);
      if (page.items.length === 0) break;
      after = page.next_after;
    }
    const startOf = new Map(
      events.filter((e) => e.type === 'attempt_start').map((e) => [e.attempt_id, Date.parse(e.at)]),
    );
    const toOpen: number[] = [];
    const toStart: number[] = [];
    let lastRelease: number | null = null;
    for (const e of events) {
      if (e.type === 'attempt_end' && typeof e.data.released_slot === 'string')
        lastRelease = Date.parse(e.at);
      else if (e.type === 'gate_opened' && lastRelease !== null) {
        toOpen.push(Date.parse(e.at) - lastRelease);
        const s = startOf.get(e.attempt_id);
        if (s !== undefined) toStart.push(s - lastRelease);
        lastRelease = null;
      }
    }
    const f = (xs: number[], p: number) => `${percentile(xs, p).toFixed(1)} ms`;
    console.log(
      `${store}: ${waiting} waiting, server CPU while waiting ${idlePct.toFixed(2)} % of a core; ` +
        `${toOpen.length} hand-overs in ${(total / 1000).toFixed(1)} s; ` +
        `end → gate_opened p50 ${f(toOpen, 50)} p99 ${f(toOpen, 99)}; ` +
        `end → attempt_start p50 ${f(toStart, 50)} p99 ${f(toStart, 99)}`,
    );
  } finally {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await run('sqlite');
await run('postgres');
await closePg();
