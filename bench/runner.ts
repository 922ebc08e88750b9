// Runner scenarios of issue 8, called by bench/run.ts (`npm run bench -- runner`), figures only:
//   idle      CPU of N idle running attempts, then exit-to-recorded latency among them
//   flood     event loop's longest stall and other calls' p99 while a plan writes 4 MB at full speed
//   rate      attempts/s end to end vs. raw spawning of the same no-op at the same concurrency
//   logread   a 64 KiB log range read at 1, 10 and 100 MB of log
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { openLifeline, type Lifeline } from '../src/lifecycle/engine.ts';
import { readExit, readProcess } from '../src/runner/rundir.ts';
import { addRow, section } from './report.ts';

function runnerSection() {
  return section('Runner (SQLite, in-process engine)', ['scenario', 'figure', 'target', 'detail']);
}

const ACTOR = { name: 'bench', role: 'admin' } as const;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function engineIn(dir: string, plans: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const config = configFromObject(
    { data_dir: dir, db: `sqlite:${path.join(dir, 'lifeline.db')}`, plans, ...extra },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  await engine.start();
  return engine;
}

const sh = (script: string) => ({ deploy: ['/bin/sh', '-c', script], teardown: ['/bin/true'] });

/** Resolves with the wall-clock ms at which the attempt's attempt_end was seen committed. */
function endedOf(engine: Lifeline): (id: string) => Promise<number> {
  const waiting = new Map<string, (t: number) => void>();
  let after = 0;
  let reading: Promise<void> | null = null;
  let again = false;
  const read = async (): Promise<void> => {
    const rows = await engine.store.db
      .selectFrom('events')
      .select(['seq', 'attempt_id'])
      .where('seq', '>', after)
      .where('type', '=', 'attempt_end')
      .orderBy('seq')
      .execute();
    const now = Date.now();
    for (const r of rows) {
      after = Math.max(after, Number(r.seq));
      waiting.get(r.attempt_id!)?.(now);
    }
  };
  engine.onEvents(() => {
    if (reading) {
      again = true;
      return;
    }
    const loop = async () => {
      do {
        again = false;
        await read();
      } while (again);
      reading = null;
    };
    reading = loop();
  });
  return (id) => new Promise((resolve) => waiting.set(id, resolve));
}

export async function benchIdle(tmp: string, quick = false): Promise<void> {
  const n = Number(process.env.BENCH_IDLE_N ?? (quick ? 300 : 1000));
  const engine = await engineIn(
    path.join(tmp, 'idle'),
    { idle: sh('exec sleep 3600') },
    { reap_interval: '10s' },
  );
  const ended = endedOf(engine);
  const ids: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await engine.createDeployment({ name: `idle-${i}`, plan: 'idle' }, ACTOR);
    ids.push((await engine.startDeploy(`idle-${i}`, {}, ACTOR)).id);
    // In process, these calls resolve in microtasks only: without a turn of the event loop the
    // heartbeat, inotify and the watcher would wait for the whole loop (the lease lapsed in it).
    await new Promise((r) => setImmediate(r));
  }
  for (;;) {
    const running = await engine.store.db
      .selectFrom('attempts')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('state', '=', 'running')
      .executeTakeFirstOrThrow();
    if (Number(running.n) === n) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`  ${n} attempts running after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  await new Promise((r) => setTimeout(r, 2000)); // let the start-up work settle
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, 20_000)); // two safety passes at the 10 s reap interval
  const cpu = process.cpuUsage(cpu0);
  const share = (cpu.user + cpu.system) / 1000 / (performance.now() - w0);
  addRow(runnerSection(), [
    `idle CPU of ${n} running attempts`,
    `${(share * 100).toFixed(1)} % of a core`,
    '< 5 %',
    'over 20 s, two safety passes at reap_interval 10 s',
  ]);

  // Exits among them, one every 50 ms (a steady rate, not a burst beyond what the store can commit);
  // latency = attempt_end seen committed - the exit record's time. Split at the moment the record was
  // in place (its ctime: renamed there once durable), which is when the server can first see it:
  // before it is the supervisor's durable write, after it the server's part.
  const lat: number[] = [];
  const durable: number[] = [];
  const served: number[] = [];
  const dirs = await engine.store.db.selectFrom('attempts').select(['id', 'run_dir']).execute();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < dirs.length; i++) {
    const { id, run_dir } = dirs[i];
    const proc = readProcess(run_dir!);
    if (!proc) continue;
    const done = ended(id);
    process.kill(proc.pid, 'SIGKILL');
    pending.push(
      done.then((t) => {
        const exit = readExit(run_dir!);
        if (!exit) return;
        lat.push(t - exit.at);
        const placed = Math.round(fs.statSync(path.join(run_dir!, 'exit')).ctimeMs);
        durable.push(placed - exit.at);
        served.push(t - placed);
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
  }
  await Promise.all(pending);
  addRow(runnerSection(), [
    `exit → recorded among ${n} running`,
    `p99 ${pct(lat, 99)} ms`,
    'p99 < 50 ms',
    `p50 ${pct(lat, 50)} ms, max ${pct(lat, 100)} ms; one SIGKILL every 50 ms`,
  ]);
  addRow(runnerSection(), [
    `… of which exit record in place → recorded`,
    `p99 ${pct(served, 99)} ms`,
    '—',
    `p50 ${pct(served, 50)} ms, max ${pct(served, 100)} ms; before it, the supervisor's durable write of the record: p50 ${pct(durable, 50)} ms, p99 ${pct(durable, 99)} ms`,
  ]);
  await engine.close();
}

export async function benchFlood(tmp: string): Promise<void> {
  const engine = await engineIn(path.join(tmp, 'flood'), {
    flood: sh("seq -f '%07g' 1 500000"),
  });
  await engine.createDeployment({ name: 'other', plan: 'flood' }, ACTOR);
  await engine.createDeployment({ name: 'flood', plan: 'flood' }, ACTOR);
  const ended = endedOf(engine);
  const h = monitorEventLoopDelay({ resolution: 10 });
  const lat: number[] = [];
  let stop = false;
  const other = (async () => {
    while (!stop) {
      const t = performance.now();
      await engine.getDeployment('other');
      await engine.listDeployments({ limit: 50 });
      lat.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  h.enable();
  const t0 = performance.now();
  const a = await engine.startDeploy('flood', {}, ACTOR);
  await ended(a.id);
  const took = performance.now() - t0;
  h.disable();
  stop = true;
  await other;
  const r = runnerSection();
  addRow(r, [
    'longest event-loop stall while a plan writes 4 MB',
    `${(h.max / 1e6).toFixed(0)} ms`,
    '< 100 ms',
    `ingested in ${(took / 1000).toFixed(1)} s`,
  ]);
  addRow(r, [
    'other calls p99 during that 4 MB plan',
    `${pct(lat, 99).toFixed(0)} ms`,
    '< 200 ms',
    `${lat.length} calls (get + list page)`,
  ]);
  await engine.close();
}

async function exited(cmd: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const c = spawn('/bin/sh', ['-c', cmd], { stdio: 'ignore' });
    c.once('exit', () => resolve());
    c.once('error', reject);
  });
}

export async function benchRate(tmp: string, quick = false): Promise<void> {
  const conc = 8;
  const seconds = Number(process.env.BENCH_RATE_SECONDS ?? (quick ? 5 : 10));
  const engine = await engineIn(path.join(tmp, 'rate'), {
    noop: { deploy: ['/bin/true'], teardown: ['/bin/true'] },
  });
  const ended = endedOf(engine);
  for (let i = 0; i < conc; i++) await engine.createDeployment({ name: `r-${i}`, plan: 'noop' }, ACTOR);
  const run = async (one: (i: number) => Promise<void>) => {
    let count = 0;
    const until = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: conc }, async (_, i) => {
        while (performance.now() < until) {
          await one(i);
          count++;
        }
      }),
    );
    return count / seconds;
  };
  const ours = await run(async (i) => {
    const a = await engine.startDeploy(`r-${i}`, {}, ACTOR);
    await ended(a.id);
  });
  const raw = await run(() => exited('/bin/true'));
  addRow(runnerSection(), [
    `attempts/s end to end ÷ raw spawn, ${conc} at a time (in-process engine and spawns: the old way; see the peers tables)`,
    (ours / raw).toFixed(2),
    '≥ 0.4',
    `ours ${ours.toFixed(1)}/s, raw spawn of /bin/true ${raw.toFixed(1)}/s, ${seconds} s each, back to back`,
  ]);
  await engine.close();
}

export async function benchLogRead(tmp: string, quick = false): Promise<void> {
  const line = 'x'.repeat(3999); // + "\n": 1 MB = 250 lines
  for (const mb of quick ? [1, 10, 30] : [1, 10, 100]) {
    const dir = path.join(tmp, `logread-${mb}`);
    const e = await engineIn(
      dir,
      { mb: { ...sh(`yes ${line} | head -n ${mb * 250}`) } },
      { log_limit: { lines: 1_000_000, bytes: 200_000_000 }, durable_commits: false },
    );
    const endedHere = endedOf(e);
    await e.createDeployment({ name: 'log', plan: 'mb' }, ACTOR);
    const a = await e.startDeploy('log', {}, ACTOR);
    await endedHere(a.id);
    const times: number[] = [];
    const size = mb * 1_000_000;
    for (let i = 0; i < 21; i++) {
      const offset = Math.floor((size / 21) * i);
      const t = performance.now();
      const page = await e.readAttemptLog(a.id, offset, { limit: 65536 });
      times.push(performance.now() - t);
      if (page.text.length === 0) throw new Error('empty page');
    }
    addRow(runnerSection(), [
      `64 KiB log range read at ${mb} MB of log`,
      `${pct(times, 50).toFixed(2)} ms`,
      'flat',
      `median over 21 offsets; p99 ${pct(times, 99).toFixed(2)} ms`,
    ]);
    await e.close();
  }
}
