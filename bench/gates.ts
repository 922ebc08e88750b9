// Gates bench (issue 20, SPEC §13.1): one `lifeline serve` in a process of its own per store, driven over
// HTTP, with no-op plans (`/bin/true`) sharing one concurrency key of limit 1 behind a holder that sleeps.
// 1. CPU while attempts wait: the serve process's utime+stime from /proc/<pid>/stat over a window, first
//    with nothing waiting (the holder running), then with WAITING attempts queued behind it (nothing
//    should poll a waiting attempt). The Postgres backends of its database are shown beside it.
// 2. Slot hand-over: all but QUEUED of the waiting attempts are cancelled, then the holder; each slot
//    hand-over is timed from the events' own timestamps (one clock, the server's): from an attempt's
//    `attempt_end` that frees the slot to the next attempt's `gate_opened` (the slot granted) and to
//    its `attempt_start` (its process running).
//   npm run bench -- gates [--quick]       SQLite and Postgres, into the bench report
//   npx tsx bench/gates.ts [--store sqlite|postgres] [--waiting 1000] [--queued 500] [--window 10]   JSON
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { dbCpu, dbDelta } from './peers.ts';
import { closePg, pgDatabase } from './pg.ts';
import { addRow, section } from './report.ts';
import { cpuOf, Serve } from './serve.ts';
import { percentile } from './stats.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../test/fixtures/plans');
const TRUE = ['/usr/bin/true', '/bin/true'].find((f) => fs.existsSync(f))!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface GatesResult {
  store: string;
  waiting: number;
  /** % of one core used by the serve process over the window */
  cpu_idle_pct: number;
  cpu_waiting_pct: number;
  /** the Postgres backends of its database, same windows (0 on SQLite) */
  db_cpu_idle_pct: number;
  db_cpu_waiting_pct: number;
  window_s: number;
  handovers: number;
  handover_s: number;
  to_open: { p50_ms: number; p99_ms: number; max_ms: number };
  /** to the plan's exec (its started_at) */
  to_start: { p50_ms: number; p99_ms: number; max_ms: number };
  /** to the server's attempt_start (it saw the process) */
  to_recorded: { p50_ms: number; p99_ms: number; max_ms: number };
}

function must(r: { status: number; json: any }, status: number, what: string): any {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/** Runs `fn` over 0..n-1, `width` at a time. */
async function pool(n: number, width: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/** % of one core the serve process (and the database's backends) used over `seconds`. */
async function cpuWindow(serve: Serve, db: string | null, seconds: number): Promise<[number, number]> {
  const d0 = await dbCpu(db);
  const c0 = cpuOf(serve.pid).self;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = cpuOf(serve.pid).self;
  const wall = performance.now() - t0;
  const d1 = await dbCpu(db);
  return [((c1 - c0) / wall) * 100, (dbDelta(d0, d1) / wall) * 100];
}

interface Ev {
  seq: number;
  type: string;
  at: string;
  attempt_id: string | null;
  data: Record<string, unknown>;
}

async function events(serve: Serve): Promise<Ev[]> {
  const out: Ev[] = [];
  for (let after = 0; ;) {
    const page = must(
      await serve.request(
        'GET',
        `/v1/events?after=${after}&limit=1000&type=attempt_end,gate_opened,attempt_start`,
      ),
      200,
      'events',
    );
    out.push(...page.items);
    if (page.items.length === 0) return out;
    after = page.next_after;
  }
}

/**
 * Each freed slot: ms from the end that freed it to the next grant, to that attempt's process start
 * (`started_at`: when its plan was exec'd) and to its `attempt_start` (when the server recorded it).
 */
export function handovers(
  evs: Ev[],
  startedAt: Map<string, number>,
): { toOpen: number[]; toStart: number[]; toRecorded: number[] } {
  const recorded = new Map(
    evs.filter((e) => e.type === 'attempt_start').map((e) => [e.attempt_id, Date.parse(e.at)]),
  );
  const toOpen: number[] = [];
  const toStart: number[] = [];
  const toRecorded: number[] = [];
  let freed: number | null = null;
  for (const e of evs) {
    if (e.type === 'attempt_end' && typeof e.data.released_slot === 'string') freed = Date.parse(e.at);
    else if (e.type === 'gate_opened' && e.data.gate === 'concurrency' && freed !== null) {
      toOpen.push(Date.parse(e.at) - freed);
      const s = startedAt.get(e.attempt_id ?? '');
      if (s !== undefined) toStart.push(s - freed);
      const r = recorded.get(e.attempt_id);
      if (r !== undefined) toRecorded.push(r - freed);
      freed = null;
    }
  }
  return { toOpen, toStart, toRecorded };
}

export async function measureGates(
  tmp: string,
  store: string,
  opts: { waiting: number; queued: number; windowS: number },
): Promise<GatesResult> {
  const { waiting, queued, windowS } = opts;
  const dir = fs.mkdtempSync(path.join(tmp, `gates-${store}-`));
  const db = store === 'postgres' ? await pgDatabase('bench_gates') : null;
  const concurrency = { key: 'one', limit: 1 };
  const serve = await Serve.start({
    dir,
    db: db ?? `sqlite:${path.join(dir, 'lifeline.db')}`,
    plans: {
      hold: {
        deploy: [path.join(FIXTURES, 'sleep.sh')],
        teardown: [TRUE],
        env: { SLEEP_SECONDS: '3600' },
        cancel_grace: '2s',
        concurrency,
      },
      noop: { deploy: [TRUE], teardown: [TRUE], concurrency },
    },
  });
  try {
    await serve.create('holder', 'hold');
    await pool(waiting, 8, (i) => serve.create(`q-${i}`));
    must(await serve.request('POST', '/v1/deployments/holder/attempts', {}), 202, 'deploy holder');
    for (;;) {
      const d = must(await serve.request('GET', '/v1/deployments/holder'), 200, 'holder');
      if (d.current_attempt?.state === 'running') break;
      await sleep(100);
    }
    await sleep(3000);
    const [idle, dbIdle] = await cpuWindow(serve, db, windowS);

    // Accepted in queue order (one at a time: the queue is first come, first served).
    const ids: string[] = [];
    for (let i = 0; i < waiting; i++) {
      const a = must(
        await serve.request('POST', `/v1/deployments/q-${i}/attempts`, {}),
        202,
        `deploy q-${i}`,
      );
      ids.push(a.id);
    }
    const metrics = await serve.request('GET', '/metrics');
    const m = /lifeline_attempts_waiting\{gate="concurrency"\} (\d+)/.exec(String(metrics.json));
    if (!m || Number(m[1]) !== waiting)
      throw new Error(`expected ${waiting} waiting, /metrics says ${m?.[1]}`);
    // The accepts' own after-work (garbage collection, the first metrics scrape…) settles first.
    await sleep(8000);
    const [busy, dbBusy] = await cpuWindow(serve, db, windowS);

    // Only the first `queued` stay; the others are cancelled (an ordinary cancel of a waiting attempt).
    await pool(waiting - queued, 4, async (k) => {
      const i = queued + k;
      must(await serve.request('POST', `/v1/deployments/q-${i}/cancel`, {}), 202, `cancel q-${i}`);
    });
    await Promise.all(ids.slice(queued).map((id) => serve.end(id)));

    const began = performance.now();
    must(await serve.request('POST', '/v1/deployments/holder/cancel', {}), 202, 'cancel holder');
    const ends = await Promise.all(ids.slice(0, queued).map((id) => serve.end(id)));
    const took = performance.now() - began;
    const bad = ends.filter((s) => s !== 'succeeded').length;
    if (bad > 0) throw new Error(`${bad} of the queued attempts did not succeed`);

    const startedAt = new Map<string, number>();
    for (const id of ids.slice(0, queued)) {
      const a = must(await serve.request('GET', `/v1/attempts/${id}`), 200, `attempt ${id}`);
      startedAt.set(id, Date.parse(a.started_at));
    }
    const { toOpen, toStart, toRecorded } = handovers(await events(serve), startedAt);
    const stats = (xs: number[]) => ({
      p50_ms: percentile(xs, 50),
      p99_ms: percentile(xs, 99),
      max_ms: xs.length ? Math.max(...xs) : NaN,
    });
    return {
      store,
      waiting,
      cpu_idle_pct: idle,
      cpu_waiting_pct: busy,
      db_cpu_idle_pct: dbIdle,
      db_cpu_waiting_pct: dbBusy,
      window_s: windowS,
      handovers: toOpen.length,
      handover_s: took / 1000,
      to_open: stats(toOpen),
      to_start: stats(toStart),
      to_recorded: stats(toRecorded),
    };
  } finally {
    await serve.stop();
  }
}

/** `npm run bench -- gates`: both stores, as rows of the bench report. */
export async function benchGates(tmp: string, quick: boolean): Promise<void> {
  const waiting = quick ? 200 : 1000;
  const queued = quick ? 100 : 500;
  const windowS = quick ? 5 : 10;
  const s = section(
    `Gates: ${queued} attempts queued on one key of limit 1, ${waiting} waiting (issue 20, lifeline serve)`,
    [
      'store',
      'serve CPU, nothing waiting (% of a core)',
      `serve CPU, ${waiting} waiting`,
      'Postgres backends CPU, waiting',
      'hand-overs',
      'end → slot granted p50 / p99 (ms)',
      'end → next process start p50 / p99 (ms)',
      'max (ms)',
      'end → attempt_start recorded p50 / p99 (ms)',
    ],
  );
  for (const store of ['sqlite', 'postgres']) {
    const r = await measureGates(tmp, store, { waiting, queued, windowS });
    addRow(s, [
      store,
      r.cpu_idle_pct,
      r.cpu_waiting_pct,
      store === 'postgres' ? r.db_cpu_waiting_pct.toFixed(2) : '-',
      String(r.handovers),
      `${r.to_open.p50_ms} / ${r.to_open.p99_ms}`,
      `${r.to_start.p50_ms} / ${r.to_start.p99_ms}`,
      String(r.to_start.max_ms),
      `${r.to_recorded.p50_ms} / ${r.to_recorded.p99_ms}`,
    ]);
  }
  s.notes.push(
    `Targets: hand-over (end → next start) p99 < 50 ms on each store; serve CPU with ${waiting} waiting < 2 % of a core.`,
    `\`lifeline serve\` in its own process (default config, JSON log to a file), no-op plans \`${TRUE}\` sharing concurrency key \`one\` (limit 1) behind a holder that sleeps; one event stream open (attempt_end). CPU: utime+stime of the serve process from /proc/<pid>/stat over ${windowS} s, 8 s after the last accept; the Postgres column is the backends connected to its database. Hand-overs on the server's clock: \`attempt_end\` with \`released_slot\` (its \`at\`) → the next \`gate_opened\` (the slot granted) → that attempt's \`started_at\` (its plan exec'd: the mtime of the run dir's \`process\` record) and its \`attempt_start\` event (the server saw it); the first is the holder's cancel.`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-bench-gates-'));
  try {
    const stores = process.argv.includes('--store') ? [arg('store', 'sqlite')] : ['sqlite', 'postgres'];
    for (const store of stores) {
      const r = await measureGates(tmp, store, {
        waiting: Number(arg('waiting', '1000')),
        queued: Number(arg('queued', '500')),
        windowS: Number(arg('window', '10')),
      });
      console.log(JSON.stringify(r));
    }
  } finally {
    await closePg();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
