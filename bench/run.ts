// Benchmarks, measured side by side in one run and reported as medians and ratios (never asserted in tests).
//   npm run bench                 all
//   npm run bench -- supervisor   one
//   npm run bench -- reads        list/events pages at size, filtered polls (bench/reads.ts)
//   npm run bench -- stream       live fan-out and replay storms over real sockets (bench/stream.ts)
//   npm run bench -- runner       rate, flood, logread, idle (each also alone)
//   npm run bench -- writes       create over HTTP vs bare Fastify; transition vs direct SQL (create | transition)
//   npm run bench -- peers        Lifeline serve (SQLite, Postgres) over HTTP vs raw spawn, graphile-worker 0.16
//                                 and pg-boss 10, each in a process of its own (bench/peers.ts); with --quick
//                                 this is the couple-of-minutes comparison of issue 18
//   npm run bench -- cpu          server CPU per no-op attempt of lifeline serve, SQLite and Postgres
//                                 (bench/attempt-cpu.ts: A/B against another tree, profiling)
//   npm run bench -- scale        1, 2, 3 lifeline serve instances on one Postgres: transitions/s, log lines/s,
//                                 how long the counters row is held (bench/scale.ts)
//   npm run bench -- peers-inproc the old way: every peer inside the bench process (not in a full run)
//   npm run bench -- stacks       a 100-unit stack run vs. a client script waiting per stage; 1,000-unit stack reads
//                                 (bench/stacks.ts; SQLite and Postgres)
//   npm run bench -- apply-plan   planning 200 stacks × 10 units vs. reading them one by one over GET
//                                 (bench/apply-plan.ts; SQLite and Postgres)
//   npm run bench -- notify       commit on one Postgres instance to receipt on another's stream (bench/notify.ts)
//   npm run bench -- gates        500 attempts queued on one key of limit 1: slot hand-over latency; serve CPU
//                                 with 1,000 waiting (bench/gates.ts; lifeline serve, SQLite and Postgres)
//   npm run bench -- drift        server CPU of scheduled checks, 1,000 deployments every minute (bench/drift.ts;
//                                 SQLite and Postgres)
//   --quick                       smaller data and fewer rounds
// A run of every scenario writes its tables to docs/performance.md; one scenario to $TMPDIR/lifeline-bench-<name>.md.
// Each row: ours vs. the raw limit on this machine (spawning a process and waiting for it).
import { spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { openLifeline } from '../src/lifecycle/engine.ts';
import { createLauncher } from '../src/runner/launcher.ts';
import { benchNotify } from './notify.ts';
import { benchReads } from './reads.ts';
import { printTable } from './stats.ts';
import { addRow, machine, section, writeReport } from './report.ts';
import { benchStream } from './stream.ts';
import { benchFlood, benchIdle, benchLogRead, benchRate } from './runner.ts';
import { benchPeers } from './peers.ts';
import { benchAttemptCpu } from './attempt-cpu.ts';
import { benchDrift } from './drift.ts';
import { benchScale } from './scale.ts';
import { benchStacks } from './stacks.ts';
import { benchGates } from './gates.ts';
import { benchApplyPlan } from './apply-plan.ts';
import { benchPeersInProcess } from './peers-inproc.ts';
import { benchWrites } from './writes.ts';
import { closePg } from './pg.ts';

const N = Number(process.env.BENCH_N ?? (process.argv.includes('--quick') ? 15 : 40));

function preface(): string[] {
  const lines = [
    quick
      ? "**Quick run** (`--quick`): smaller data sets and fewer rounds than the issue asks for (sizes are in each row); a full `npm run bench` uses the issue's sizes."
      : 'Full run: the sizes the issue asks for.',
    'Ratios are measured side by side in one run (rounds interleaved), so machine load hits both sides alike; absolute figures move with the load average above.',
  ];
  if (os.loadavg()[0] > os.cpus().length * 2)
    lines.push(
      `The machine was shared with other jobs during this run (load average ≫ ${os.cpus().length} cores): absolute latencies and rates are far worse than on an idle machine; read the ratios.`,
    );
  return lines;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function time(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

function exited(child: { exitCode: number | null } & Pick<EventEmitter, 'once'>): Promise<void> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.once('error', reject);
  });
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-bench-'));

/** Interleaved so that machine noise hits both sides alike. */
async function sideBySide(a: () => Promise<void>, b: () => Promise<void>): Promise<[number[], number[]]> {
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < N; i++) {
    xs.push(await time(a));
    ys.push(await time(b));
  }
  return [xs, ys];
}

function report(name: string, ours: number[], base: number[], baseName: string): void {
  const o = median(ours);
  const r = median(base);
  const s = section('Supervisor and one attempt (SQLite, in the bench process), ms per item, interleaved', [
    'scenario',
    'ours ms',
    'baseline',
    'baseline ms',
    'ours ÷ baseline (time)',
    'rounds',
  ]);
  addRow(s, [name, o, baseName, r, `${(o / r).toFixed(2)}×`, String(ours.length)]);
}

async function benchSupervisor(): Promise<void> {
  let i = 0;
  const runner = createLauncher('perl', tmp, (m) => {
    throw new Error(m);
  });
  const sh = createLauncher('sh', tmp);
  const once = async (launcher: typeof runner) => {
    const dir = path.join(tmp, `sup-${i++}`);
    await exited(launcher.start({ dir, argv: ['/bin/true'], env: process.env, cwd: tmp }));
    if (!fs.existsSync(path.join(dir, 'exit'))) throw new Error('no exit record');
  };
  await once(runner); // the runner starts once per data dir; its start is not per attempt
  const raw = async () => {
    await exited(spawn('/bin/sh', ['-c', '/bin/true'], { stdio: 'ignore' }));
  };
  const [ours, base] = await sideBySide(() => once(runner), raw);
  report('supervised attempt (runner.pl)', ours, base, 'sh -c true (raw spawn)');
  const [old, base2] = await sideBySide(() => once(sh), raw);
  report('supervised attempt (supervisor.sh)', old, base2, 'sh -c true (raw spawn)');
  const [ours2, old2] = await sideBySide(
    () => once(runner),
    () => once(sh),
  );
  report('supervised attempt (runner.pl)', ours2, old2, 'supervisor.sh (before)');
  runner.close();
}

async function benchAttempt(): Promise<void> {
  const dir = path.join(tmp, 'engine');
  const config = configFromObject(
    {
      data_dir: dir,
      db: `sqlite:${path.join(dir, 'lifeline.db')}`,
      plans: { t: { deploy: ['/bin/true'], teardown: ['/bin/true'] } },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  await engine.start();
  await engine.createDeployment({ name: 'bench', plan: 't' }, { name: 'bench', role: 'admin' });
  const actor = { name: 'bench', role: 'admin' } as const;
  const [ours, raw] = await sideBySide(
    async () => {
      const a = await engine.startDeploy('bench', {}, actor);
      await new Promise<void>((resolve) => {
        const off = engine.onEvents(async () => {
          const x = await engine.getAttempt(a.id);
          if (x.state === 'succeeded') {
            off();
            resolve();
          }
        });
      });
    },
    async () => {
      await exited(spawn('/bin/sh', ['-c', '/bin/true'], { stdio: 'ignore' }));
    },
  );
  report('deploy accepted -> succeeded', ours, raw, 'sh -c true (raw spawn)');
  await engine.close();
}

// Supervisors are unref'd (a server must be able to exit while attempts run): hold the loop open here.
const keepAlive = setInterval(() => undefined, 1000);
const quick = process.argv.includes('--quick');
const started = machine(
  ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' '),
);
const which = process.argv.slice(2).find((a) => !a.startsWith('--'));
console.log(
  `lifeline bench, node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(2)}`,
);
if (!which || which === 'supervisor') await benchSupervisor();
if (!which || which === 'attempt') await benchAttempt();
if (!which || which === 'reads')
  printTable('reads (SQLite, in-process inject)', await benchReads(tmp, quick));
if (!which || which === 'stream') printTable('streams (SQLite, real sockets)', await benchStream(tmp, quick));
if (!which || which === 'notify')
  printTable('wake-ups across instances (Postgres, real sockets)', await benchNotify(tmp, quick));
if (!which || which === 'runner' || which === 'rate') await benchRate(tmp, quick);
if (!which || which === 'runner' || which === 'flood') await benchFlood(tmp);
if (!which || which === 'runner' || which === 'logread') await benchLogRead(tmp, quick);
if (!which || which === 'runner' || which === 'idle') await benchIdle(tmp, quick);
if (!which || ['writes', 'create', 'transition'].includes(which)) await benchWrites(tmp, quick, which);
if (!which || which === 'peers') await benchPeers(tmp, quick);
if (which === 'cpu') await benchAttemptCpu(tmp, quick);
if (!which || which === 'scale') await benchScale(tmp, quick);
if (!which || which === 'stacks') await benchStacks(tmp, quick);
if (!which || which === 'gates') await benchGates(tmp, quick);
if (!which || which === 'drift') await benchDrift(tmp, quick);
if (!which || which === 'apply-plan') await benchApplyPlan(tmp, quick);
if (which === 'peers-inproc') await benchPeersInProcess(tmp, quick);
await closePg();
fs.rmSync(tmp, { recursive: true, force: true });
clearInterval(keepAlive);
// Only a full run (every scenario) replaces docs/performance.md; one scenario goes to a side file.
const out = which
  ? path.join(os.tmpdir(), `lifeline-bench-${which}.md`)
  : path.resolve('docs/performance.md');
writeReport(out, started, preface());
console.log(`\nwrote ${out}`);
