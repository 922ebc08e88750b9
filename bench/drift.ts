// Server CPU of scheduled checks (SPEC §14.2, issue 21): N ready deployments of a plan checked every
// minute with a no-op check (`true`), an engine in this process, its own CPU (process.cpuUsage: the
// checks' processes are the runner's children, not counted) over a measured window after a warm-up.
//   npx tsx bench/drift.ts [--store sqlite|postgres] [--n 1000] [--seconds 120] [--every 1m]
//   npm run bench -- drift    both stores, 1,000 deployments every minute, 60 s windows (--quick: 20 s)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { openLifeline } from '../src/lifecycle/engine.ts';
import { closePg, pgDatabase } from './pg.ts';
import { addRow, section } from './report.ts';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}

export interface DriftResult {
  store: string;
  deployments: number;
  every: string;
  window_s: number;
  checks_in_window: number;
  checks_per_s: number;
  check_results_total: number;
  server_cpu_ms: number;
  server_cpu_ms_per_check: number;
  server_cpu_percent_of_a_core: number;
}

/** `npm run bench -- drift`: both stores side by side, a row each (target: < 5 % of a core). */
export async function benchDrift(tmp: string, quick: boolean): Promise<void> {
  const s = section('Scheduled checks: server CPU, 1,000 ready deployments checked every minute', [
    'store',
    'window',
    'checks/s',
    'server CPU ms per check',
    'server CPU, % of a core (target < 5)',
  ]);
  for (const store of ['sqlite', 'postgres']) {
    const r = await measureDrift({ store, n: 1000, seconds: quick ? 20 : 60, every: '1m', tmp });
    addRow(s, [
      store === 'sqlite' ? 'SQLite' : 'Postgres',
      `${r.window_s} s`,
      r.checks_per_s,
      r.server_cpu_ms_per_check,
      r.server_cpu_percent_of_a_core,
    ]);
  }
}

export async function measureDrift(o: {
  store: string;
  n: number;
  seconds: number;
  every: string;
  tmp?: string;
}): Promise<DriftResult> {
  const { store, n, seconds, every } = o;
  const dir = fs.mkdtempSync(path.join(o.tmp ?? os.tmpdir(), 'lifeline-bench-drift-'));
  const db = store === 'sqlite' ? `sqlite:${path.join(dir, 'lifeline.db')}` : await pgDatabase('bench_drift');
  const truePath = ['/usr/bin/true', '/bin/true'].find((f) => fs.existsSync(f))!;
  const config = configFromObject(
    {
      db,
      data_dir: dir,
      plans: {
        noop: { deploy: [truePath], teardown: [truePath], check: [truePath], check_every: every },
      },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: process.env.BENCH_LOG ?? 'silent' }) });
  try {
    // Ready deployments written directly (the bench is about checking them, not deploying them).
    const at = new Date().toISOString();
    const rows = Array.from({ length: n }, (_, i) => ({
      id: `dep_bench${String(i).padStart(6, '0')}`,
      name: `b-${i}`,
      plan: 'noop',
      params: '{}',
      labels: '{}',
      state: 'ready',
      version: 2,
      state_changed_at: at,
      current_attempt_id: null,
      created_at: at,
      updated_at: at,
      deleted_at: null,
    }));
    for (let i = 0; i < rows.length; i += 200) {
      await engine.store.db
        .insertInto('deployments')
        .values(rows.slice(i, i + 200))
        .execute();
    }
    await engine.start();
    // Warm-up: every deployment slotted, and checks running for a while.
    const warm = Math.min(20, seconds / 4);
    await new Promise((r) => setTimeout(r, warm * 1000));
    const ran0 = engine.drift.ran;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const cpu = process.cpuUsage(cpu0);
    const wallMs = performance.now() - t0;
    const ran = engine.drift.ran - ran0;
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const results = await engine.store.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'check_result')
      .executeTakeFirstOrThrow();
    return {
      store,
      deployments: n,
      every,
      window_s: Math.round(wallMs / 1000),
      checks_in_window: ran,
      checks_per_s: +(ran / (wallMs / 1000)).toFixed(1),
      check_results_total: Number(results.n),
      server_cpu_ms: Math.round(cpuMs),
      server_cpu_ms_per_check: +(cpuMs / Math.max(1, ran)).toFixed(2),
      server_cpu_percent_of_a_core: +((100 * cpuMs) / wallMs).toFixed(2),
    };
  } finally {
    await engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const r = await measureDrift({
    store: arg('store', 'sqlite'),
    n: Number(arg('n', '1000')),
    seconds: Number(arg('seconds', '120')),
    every: arg('every', '1m'),
  });
  await closePg();
  console.log(JSON.stringify(r));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
