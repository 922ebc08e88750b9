// Scale-out on one Postgres (issue 18), `npm run bench -- scale [--quick]`: 1, 2 and 3 `lifeline serve`
// instances on one database, each with its own data dir and 8 deployments, all driven at once over HTTP.
// Each attempt runs a plan printing LINES lines: three state-changing transactions (accepted, running,
// ended) and its log lines, each transaction appending events under the `counters` row lock. Measured:
// transitions/s, log lines/s, and how long each transaction holds the counter row (bench/procs/hold.mjs,
// from the counter statement sent to its COMMIT answered), so the ceiling can be worked out on paper.
// $BENCH_AB_ROOT adds the same run of another checkout, interleaved (per instance count).
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pgDatabase } from './pg.ts';
import { addRow, section } from './report.ts';
import { Serve } from './serve.ts';
import { percentile } from './stats.ts';

const CONC = 8;
const LINES = 20;
const HOLD = path.join(import.meta.dirname, 'procs', 'hold.mjs');

export async function benchScale(tmp: string, quick: boolean): Promise<void> {
  const perInstance = Number(process.env.BENCH_SCALE_N ?? (quick ? 80 : 200));
  const roots: [string, string | undefined][] = [['this tree', undefined]];
  if (process.env.BENCH_AB_ROOT) roots.push([`B ${process.env.BENCH_AB_ROOT}`, process.env.BENCH_AB_ROOT]);
  const sec = section(
    `Scale-out on one Postgres: 1–3 lifeline serve instances, ${perInstance} attempts each (${CONC} at a time per instance), ${LINES} log lines per attempt`,
    [
      'instances, tree',
      'transitions/s',
      'log lines/s',
      'commits/s',
      'counter held p50 / p99 ms',
      'counter statement sent → answered p50 / p99 ms',
      'counter row busy',
      'attempts not succeeded',
    ],
  );
  let k = 0;
  for (const instances of [1, 2, 3]) {
    for (const [label, root] of roots) {
      const db = await pgDatabase(`bench_scale_${k++}`);
      const serves: Serve[] = [];
      const holdFiles: string[] = [];
      try {
        for (let i = 0; i < instances; i++) {
          const dir = path.join(tmp, `scale-${k}-${i}`);
          const holdFile = path.join(tmp, `hold-${k}-${i}.json`);
          holdFiles.push(holdFile);
          process.env.BENCH_HOLD_FILE = holdFile; // inherited by the serve process started next
          serves.push(
            await Serve.start({
              dir,
              db,
              root,
              nodeArgs: ['--import', HOLD],
              plans: {
                noop: {
                  deploy: ['/usr/bin/seq', '-f', 'line %g of the plan output', '1', String(LINES)],
                  teardown: ['/bin/true'],
                },
              },
            }),
          );
        }
        delete process.env.BENCH_HOLD_FILE;
        const names = serves.map((_, i) => Array.from({ length: CONC }, (_, j) => `i${i}-p-${j}`));
        for (let i = 0; i < instances; i++) for (const n of names[i]) await serves[i].create(n);
        // Failures are counted, not fatal: see the note on start_failed below.
        await Promise.all(serves.map((s, i) => s.run(names[i], CONC, true))); // warm-up
        const t = performance.now();
        await Promise.all(serves.map((s, i) => s.run(names[i], perInstance, true)));
        const secs = (performance.now() - t) / 1000;
        for (const s of serves) await s.stop();
        // Every commit that appended events, warm-up and creates included: the hold times themselves.
        const probes = holdFiles.map(
          (f) => JSON.parse(fs.readFileSync(f, 'utf8')) as { holds: number[]; waits: number[] },
        );
        const holds = probes.flatMap((p) => p.holds);
        const waits = probes.flatMap((p) => p.waits);
        const attempts = perInstance * instances;
        // Commits in the measured part: 3 transitions per attempt plus its log ingestions (counted from
        // the hold records, all of which are appending commits, over the share of attempts measured).
        const measuredShare = attempts / (attempts + CONC * instances * 2);
        const commits = (holds.length * measuredShare) / secs;
        const busy = (holds.reduce((a, b) => a + b, 0) * measuredShare) / 1000 / secs;
        addRow(sec, [
          `${instances}, ${label}`,
          (3 * attempts) / secs,
          (LINES * attempts) / secs,
          commits,
          `${percentile(holds, 50).toFixed(2)} / ${percentile(holds, 99).toFixed(1)}`,
          `${percentile(waits, 50).toFixed(2)} / ${percentile(waits, 99).toFixed(1)}`,
          `${(busy * 100).toFixed(0)} %`,
          String(serves.reduce((a, s) => a + s.failed.length, 0)),
        ]);
      } finally {
        delete process.env.BENCH_HOLD_FILE;
        for (const s of serves) await s.stop().catch(() => undefined);
      }
    }
  }
  sec.notes.push(
    'attempts not succeeded: under heavy load a plan that exits at once is sometimes ended `failed`/`runner_error` ("the supervisor could not record the plan") although its `process` record and a 0 exit record are there: the watcher\'s lose() reads the process record, awaits a row read, then reads the exit record, so a plan that started and ended in between is judged never started (watcher.ts, left to the watcher split; reported).',
    "Each instance its own `lifeline serve` process and data dir, all on one database of the bench Postgres; the bench process drives all of them at once over HTTP (8 deployments each, each redeployed as soon as its attempt_end is on that instance's stream).",
    'counter held: from the statement that takes the seqs (`update "counters"`) answered to its COMMIT answered, measured on the client (node-pg, preloaded probe bench/procs/hold.mjs), every appending transaction of the run: a lower bound of the time the row is locked (the lock is taken during that statement). Sent → answered: that statement, including any wait for the lock. counter row busy: the sum of those holds per second of run (an approximation: warm-up transactions are prorated), i.e. how much of the time some transaction held the row; the ceiling is where it reaches 100 %.',
  );
}
