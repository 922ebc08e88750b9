// Server CPU per no-op attempt (issue 18), `npm run bench -- cpu [--quick]`: a `lifeline serve` process
// per store, N attempts 8 at a time over HTTP, CPU from /proc/<pid>/stat of the serve process and of its
// runner. Rounds alternate between the stores (and, with $BENCH_AB_ROOT, between this checkout and that
// one: an A/B in one run). $BENCH_SERVE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the
// serve processes (written when they stop); bench/cpuprofile.ts summarises a profile. $BENCH_CPU_CHECK=1
// gives the plan a verifying check.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pgDatabase } from './pg.ts';
import { addRow, section } from './report.ts';
import { Serve } from './serve.ts';
import { median } from './stats.ts';

const CONC = 8;

interface Side {
  name: string;
  serve: Serve;
  rates: number[];
  serveMs: number;
  sysMs: number;
  runnerMs: number;
  n: number;
}

export async function benchAttemptCpu(tmp: string, quick: boolean): Promise<void> {
  const n = Number(process.env.BENCH_CPU_N ?? 200);
  const rounds = Number(process.env.BENCH_CPU_ROUNDS ?? (quick ? 2 : 4));
  const roots: [string, string | undefined][] = [['this tree', undefined]];
  if (process.env.BENCH_AB_ROOT) roots.push([`B ${process.env.BENCH_AB_ROOT}`, process.env.BENCH_AB_ROOT]);
  const stores = (process.env.BENCH_CPU_STORES ?? 'sqlite,postgres').split(',');
  const sides: Side[] = [];
  const names = Array.from({ length: CONC }, (_, i) => `c-${i}`);
  try {
    for (const [label, root] of roots) {
      for (const store of stores) {
        const dir = path.join(tmp, `cpu-${sides.length}`);
        const db =
          store === 'sqlite'
            ? `sqlite:${path.join(dir, 'lifeline.db')}`
            : await pgDatabase(`bench_cpu_${sides.length}`);
        // $BENCH_CPU_CHECK=1: the plan has a verifying check (/bin/true), run after every exit 0.
        const plans = process.env.BENCH_CPU_CHECK
          ? { noop: { deploy: ['/bin/true'], teardown: ['/bin/true'], check: ['/bin/true'] } }
          : undefined;
        const serve = await Serve.start({ dir, db, root, plans });
        for (const x of names) await serve.create(x);
        await serve.run(names, 2 * CONC);
        sides.push({ name: `${store}, ${label}`, serve, rates: [], serveMs: 0, sysMs: 0, runnerMs: 0, n: 0 });
      }
    }
    for (let r = 0; r < rounds; r++) {
      for (const s of sides) {
        const c0 = s.serve.cpu();
        const t = performance.now();
        await s.serve.run(names, n);
        s.rates.push(n / ((performance.now() - t) / 1000));
        const c1 = s.serve.cpu();
        s.serveMs += c1.serve.self - c0.serve.self;
        s.sysMs += (c1.serve.sys ?? 0) - (c0.serve.sys ?? 0);
        s.runnerMs += c1.runner.self + c1.runner.children - (c0.runner.self + c0.runner.children);
        s.n += n;
        console.log(
          `  round ${r + 1}: ${s.name} ${s.rates.at(-1)!.toFixed(1)}/s, serve ${((c1.serve.self - c0.serve.self) / n).toFixed(2)} ms/attempt (sys ${(((c1.serve.sys ?? 0) - (c0.serve.sys ?? 0)) / n).toFixed(2)})`,
        );
      }
    }
    const sec = section(`Server CPU per no-op attempt (lifeline serve over HTTP, ${CONC} at a time)`, [
      'store, tree',
      'serve CPU ms/attempt',
      'of which kernel (stime)',
      'runner + supervisors + plans ms/attempt',
      'attempts/s (median)',
      'attempts',
    ]);
    for (const s of sides)
      addRow(sec, [s.name, s.serveMs / s.n, s.sysMs / s.n, s.runnerMs / s.n, median(s.rates), String(s.n)]);
  } finally {
    for (const s of sides) await s.serve.stop().catch(() => undefined);
  }
}
