// Apply-plan bench (issue 21, SPEC §14.1): a server holding 200 stacks × 10 units; planning the file that
// declares them (POST /v1/apply/plan, one request) against reading the same 200 stacks through
// GET /v1/stacks/{name} one by one, sequentially. One `lifeline serve` in a process of its own, driven over
// HTTP; rounds interleaved, each side first in turn; medians.
//   npm run bench -- apply-plan [--quick]     SQLite and Postgres, into the bench report
//   npx tsx bench/apply-plan.ts [--store sqlite|postgres] [--rounds 7] [--stacks 200] [--pending]   one store
// By default the stacks are applied from the same file and every unit deployed first (a re-plan of an
// unchanged file: the common case, and the one that reads the most); --pending (and --quick) creates them
// with POST /v1/stacks and deploys nothing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { closePg, pgDatabase } from './pg.ts';
import { addRow, section } from './report.ts';
import { Serve } from './serve.ts';
import { median } from './stats.ts';

/** 10 units: a network, a template, six team units (`count`), a configuration pass and a final check. */
function spec(name: string) {
  return {
    name,
    units: [
      { key: 'net', plan: 'noop' },
      { key: 'tpl', plan: 'noop', after: ['net'] },
      { key: 'team', plan: 'noop', count: 6, after: ['tpl'] },
      { key: 'cfg', plan: 'noop', after: ['team'] },
      { key: 'fin', plan: 'noop', after: ['cfg'] },
    ],
  };
}

function must(r: { status: number; json: any }, status: number, what: string): any {
  if (r.status !== status) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.json).slice(0, 500)}`);
  return r.json;
}

export interface PlanResult {
  store: string;
  stacks: number;
  deployed: boolean;
  rounds: number;
  plan_ms: number;
  gets_ms: number;
  ratio: number;
  loadavg: number[];
}

export async function measurePlan(
  tmp: string,
  store: string,
  rounds: number,
  stacks: number,
  deployed: boolean,
): Promise<PlanResult> {
  const dir = fs.mkdtempSync(path.join(tmp, `plan-${store}-`));
  const db = store === 'sqlite' ? `sqlite:${path.join(dir, 'lifeline.db')}` : await pgDatabase('bench_plan');
  const serve = await Serve.start({ dir, db });
  try {
    const names = Array.from({ length: stacks }, (_, i) => `range${String(i + 1).padStart(3, '0')}`);
    const file = { source: 'bench', documents: names.map(spec) };
    const t0 = performance.now();
    if (deployed) {
      // Applied as a user applies it (in files of 20 stacks, so that no one apply holds SQLite for long)
      // and every unit deployed: the plan then reads what a re-plan of an unchanged file reads (each
      // unit's last deployed params included) and finds nothing to do.
      for (let i = 0; i < names.length; i += 20) {
        const part = { source: 'bench', documents: names.slice(i, i + 20).map(spec) };
        const first = must(await serve.request('POST', '/v1/apply/plan', part), 200, 'first plan');
        const applied = must(
          await serve.request('POST', '/v1/apply', { ...part, digest: first.digest }),
          200,
          'apply',
        );
        for (const { run_id } of applied.started as { run_id: string }[])
          for (;;) {
            const run = must(await serve.request('GET', `/v1/runs/${run_id}`), 200, 'read run');
            if (run.state === 'succeeded') break;
            if (run.state !== 'queued' && run.state !== 'running') throw new Error(`run ended ${run.state}`);
            await new Promise((r) => setTimeout(r, 200));
          }
      }
    } else
      for (const n of names) must(await serve.request('POST', '/v1/stacks', spec(n)), 201, `create ${n}`);
    const setup = (performance.now() - t0) / 1000;
    console.error(
      `  ${store}: ${stacks} stacks ${deployed ? 'applied and deployed' : 'created'} in ${setup.toFixed(0)} s`,
    );
    const plan = async () => {
      const p = must(await serve.request('POST', '/v1/apply/plan', file), 200, 'plan');
      if (p.items.length !== stacks || p.changes)
        throw new Error(`plan of ${p.items.length} items, changes ${p.changes}`);
    };
    const gets = async () => {
      for (const n of names) {
        const s = must(await serve.request('GET', `/v1/stacks/${n}`), 200, `read ${n}`);
        if (s.units.length !== 10) throw new Error(`${n}: ${s.units.length} units`);
      }
    };
    const time = async (fn: () => Promise<void>) => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    await plan(); // warm-up, both sides
    await gets();
    const p: number[] = [];
    const g: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      if (r % 2) {
        p.push(await time(plan));
        g.push(await time(gets));
      } else {
        g.push(await time(gets));
        p.push(await time(plan));
      }
      console.error(
        `  ${store} round ${r}: plan ${p.at(-1)!.toFixed(0)} ms, ${stacks} GETs ${g.at(-1)!.toFixed(0)} ms`,
      );
    }
    return {
      store,
      stacks,
      deployed,
      rounds,
      plan_ms: Math.round(median(p)),
      gets_ms: Math.round(median(g)),
      ratio: Number((median(p) / median(g)).toFixed(2)),
      loadavg: os.loadavg().map((x) => Number(x.toFixed(1))),
    };
  } finally {
    await serve.stop();
  }
}

/** `npm run bench -- apply-plan`: both stores, as rows of the bench report. */
export async function benchApplyPlan(tmp: string, quick: boolean): Promise<void> {
  const rounds = quick ? 3 : 7;
  const s = section('Apply: planning 200 stacks × 10 units vs. reading them one by one (issue 21)', [
    'store',
    'POST /v1/apply/plan (median ms, target < 1000)',
    '200 × GET /v1/stacks/{name} (median ms)',
    'plan / GETs (target < 2)',
  ]);
  for (const store of ['sqlite', 'postgres']) {
    const r = await measurePlan(tmp, store, rounds, 200, !quick);
    addRow(s, [store, r.plan_ms, r.gets_ms, r.ratio]);
  }
  s.notes.push(
    `200 stacks of 10 units (5 keys, one with \`count: 6\`), ${quick ? 'created with POST /v1/stacks and pending' : 'applied from the same file (20 stacks an apply) and every unit deployed, so the plan finds nothing to do'}; the file declares the same 200; ${rounds} interleaved rounds after one warm-up of each side; GETs sequential over one keep-alive connection.`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string, dflt: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-bench-plan-'));
  try {
    const r = await measurePlan(
      tmp,
      arg('store', 'sqlite'),
      Number(arg('rounds', '7')),
      Number(arg('stacks', '200')),
      !process.argv.includes('--pending'),
    );
    console.log(JSON.stringify(r, null, 2));
  } finally {
    await closePg();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
