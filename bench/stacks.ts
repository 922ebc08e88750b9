// Stacks bench (issue 19, SPEC §12): one `lifeline serve` in a process of its own, driven over HTTP.
// 1. A 100-unit stack of no-op plans in 5 stages (20 units each, every stage `after` the one before)
//    deployed by a run (POST /v1/stacks/{name}/deploy, then GET /v1/runs/{id} until it ends), against the
//    same 100 deployments (5 × 20, created beforehand) deployed by a client script in a process of its own
//    (bench/procs/stages.mjs) that requests a stage's 20 attempts at once and polls each until `ready`
//    before the next stage. Both sides poll every POLL_MS; rounds interleaved, fresh names each round.
// 2. Reading a 1,000-unit stack (10 keys × count 100): GET /v1/stacks/{name}, sequential, p50/p99.
//   npm run bench -- stacks [--quick]     SQLite and Postgres, into the bench report
//   npx tsx bench/stacks.ts [--store sqlite|postgres] [--rounds 5] [--reads 300]   one store, JSON
//   npx tsx bench/stacks.ts [--store …] [--reads 300] --against <dir>   the read only, this checkout against
//                                 another (e.g. `git archive <commit> | tar -x -C <dir>`, node_modules linked)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { closePg, pgDatabase } from './pg.ts';
import { addRow, section } from './report.ts';
import { Serve } from './serve.ts';
import { median, percentile } from './stats.ts';

const STAGES = 5;
const WIDTH = 20;
const POLL_MS = 50;
const CLIENT = path.resolve(import.meta.dirname, 'procs/stages.mjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function must(r: { status: number; json: any }, status: number, what: string): any {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

function stagedSpec(name: string) {
  return {
    name,
    units: Array.from({ length: STAGES }, (_, k) => ({
      key: `s${k + 1}`,
      plan: 'noop',
      count: WIDTH,
      ...(k > 0 ? { after: [`s${k}`] } : {}),
    })),
  };
}

async function byRun(serve: Serve, round: number): Promise<number> {
  const name = `run${round}`;
  must(await serve.request('POST', '/v1/stacks', stagedSpec(name)), 201, 'create stack');
  const t0 = performance.now();
  const run = must(await serve.request('POST', `/v1/stacks/${name}/deploy`, {}), 202, 'deploy run');
  for (;;) {
    const r = must(await serve.request('GET', `/v1/runs/${run.id}`), 200, 'read run');
    if (r.state === 'succeeded') break;
    if (r.state !== 'queued' && r.state !== 'running') throw new Error(`run ended ${r.state}`);
    await sleep(POLL_MS);
  }
  return performance.now() - t0;
}

async function byClient(serve: Serve, round: number): Promise<number> {
  const prefix = `cli${round}`;
  for (let k = 1; k <= STAGES; k++)
    for (let i = 1; i <= WIDTH; i++)
      must(
        await serve.request('POST', '/v1/deployments', { name: `${prefix}-s${k}-${i}`, plan: 'noop' }),
        201,
        'create deployment',
      );
  const child = spawn(
    process.execPath,
    [CLIENT, String(serve.port), prefix, String(STAGES), String(WIDTH), String(POLL_MS)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`stages.mjs exited ${code}`);
  return (JSON.parse(out) as { ms: number }).ms;
}

async function createBig(serve: Serve): Promise<void> {
  const spec = {
    name: 'big',
    units: Array.from({ length: 10 }, (_, k) => ({
      key: `u${k}`,
      plan: 'noop',
      count: 100,
      ...(k > 0 ? { after: [`u${k - 1}`] } : {}),
    })),
  };
  must(await serve.request('POST', '/v1/stacks', spec), 201, 'create 1,000-unit stack');
  for (let i = 0; i < 20; i++) await serve.request('GET', '/v1/stacks/big'); // warm-up
}

async function readOnce(serve: Serve): Promise<number> {
  const t0 = performance.now();
  const s = must(await serve.request('GET', '/v1/stacks/big'), 200, 'read stack');
  const ms = performance.now() - t0;
  if (s.units.length !== 1000) throw new Error(`read ${s.units.length} units`);
  return ms;
}

/** Wall times of the reads, and the serve process's CPU per read (less bent by machine load than p99). */
async function readBig(serve: Serve, reads: number): Promise<{ times: number[]; cpuMs: number }> {
  await createBig(serve);
  const times: number[] = [];
  const cpu0 = serve.cpu().serve.self;
  for (let i = 0; i < reads; i++) times.push(await readOnce(serve));
  return { times, cpuMs: (serve.cpu().serve.self - cpu0) / reads };
}

const readFigures = (times: number[], cpuMs: number) => ({
  p50_ms: Number(percentile(times, 50).toFixed(1)),
  p99_ms: Number(percentile(times, 99).toFixed(1)),
  server_cpu_ms_per_read: Number(cpuMs.toFixed(1)),
});

/**
 * The 1,000-unit read on this checkout and on another (`--against <dir>`, e.g. an export of the commit
 * before a change), each in its own serve process, reads alternating: a before/after in one run.
 */
export async function compareReads(tmp: string, store: string, reads: number, against: string) {
  const sides = [
    { name: 'this checkout', root: path.resolve(import.meta.dirname, '..') },
    { name: against, root: against },
  ];
  const serves: Serve[] = [];
  try {
    for (const [i, side] of sides.entries()) {
      const dir = fs.mkdtempSync(path.join(tmp, `reads-${store}-${i}-`));
      const db =
        store === 'sqlite' ? `sqlite:${path.join(dir, 'lifeline.db')}` : await pgDatabase(`bench_reads_${i}`);
      serves.push(await Serve.start({ dir, db, root: side.root }));
      await createBig(serves[i]);
    }
    const times: number[][] = serves.map(() => []);
    const cpu0 = serves.map((s) => s.cpu().serve.self);
    for (let r = 0; r < reads; r++)
      for (const [i, serve] of serves.entries()) times[i].push(await readOnce(serve));
    return {
      store,
      reads,
      sides: sides.map((side, i) => ({
        checkout: side.name,
        ...readFigures(times[i], (serves[i].cpu().serve.self - cpu0[i]) / reads),
      })),
      loadavg: os.loadavg().map((x) => Number(x.toFixed(1))),
    };
  } finally {
    for (const s of serves) await s.stop();
  }
}

export interface StacksResult {
  store: string;
  rounds: number;
  stack_run_ms: number;
  client_script_ms: number;
  ratio: number;
  read_1000_units: { reads: number; p50_ms: number; p99_ms: number; server_cpu_ms_per_read: number };
  loadavg: number[];
}

/** One store: `rounds` interleaved rounds of both sides, then the reads of a 1,000-unit stack. */
export async function measureStacks(
  tmp: string,
  store: string,
  rounds: number,
  reads: number,
): Promise<StacksResult> {
  const dir = fs.mkdtempSync(path.join(tmp, `stacks-${store}-`));
  const db =
    store === 'sqlite' ? `sqlite:${path.join(dir, 'lifeline.db')}` : await pgDatabase('bench_stacks');
  const serve = await Serve.start({ dir, db });
  try {
    const run: number[] = [];
    const client: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      // Interleaved, and each side first in turn, so that machine load hits both alike.
      if (r % 2) {
        run.push(await byRun(serve, r));
        client.push(await byClient(serve, r));
      } else {
        client.push(await byClient(serve, r));
        run.push(await byRun(serve, r));
      }
      console.error(
        `  ${store} round ${r}: run ${run.at(-1)!.toFixed(0)} ms, client ${client.at(-1)!.toFixed(0)} ms`,
      );
    }
    const { times, cpuMs } = await readBig(serve, reads);
    return {
      store,
      rounds,
      stack_run_ms: Math.round(median(run)),
      client_script_ms: Math.round(median(client)),
      ratio: Number((median(run) / median(client)).toFixed(2)),
      read_1000_units: { reads, ...readFigures(times, cpuMs) },
      loadavg: os.loadavg().map((x) => Number(x.toFixed(1))),
    };
  } finally {
    await serve.stop();
  }
}

/** `npm run bench -- stacks`: both stores, as rows of the bench report. */
export async function benchStacks(tmp: string, quick: boolean): Promise<void> {
  const rounds = quick ? 3 : 5;
  const reads = quick ? 200 : 500;
  const s = section('Stacks: a 100-unit run vs. a client script, reading a 1,000-unit stack (issue 19)', [
    'store',
    'stack run (median ms)',
    'client script (median ms)',
    'run / script',
    'GET 1,000-unit stack p50 (ms)',
    'p99 (ms)',
    'server CPU per GET (ms)',
  ]);
  for (const store of ['sqlite', 'postgres']) {
    const r = await measureStacks(tmp, store, rounds, reads);
    addRow(s, [
      store,
      r.stack_run_ms,
      r.client_script_ms,
      r.ratio,
      r.read_1000_units.p50_ms,
      r.read_1000_units.p99_ms,
      r.read_1000_units.server_cpu_ms_per_read,
    ]);
  }
  s.notes.push(
    `5 stages × 20 no-op units (\`/bin/true\`), ${rounds} interleaved rounds; the script is bench/procs/stages.mjs in a process of its own; both poll every ${POLL_MS} ms. Reads: ${reads} sequential GETs of a stack of 10 keys × count 100, pending.`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-bench-stacks-'));
  try {
    const against = process.argv.indexOf('--against');
    const r =
      against > 0
        ? await compareReads(
            tmp,
            arg('store', 'sqlite'),
            Number(arg('reads', '300')),
            process.argv[against + 1],
          )
        : await measureStacks(
            tmp,
            arg('store', 'sqlite'),
            Number(arg('rounds', '5')),
            Number(arg('reads', '300')),
          );
    console.log(JSON.stringify(r, null, 2));
  } finally {
    await closePg();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
