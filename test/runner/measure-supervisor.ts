// Not a test: `npx tsx test/runner/measure-supervisor.ts [N]`. Time from spawnSupervisor(['true'])
// until the exit record is readable (observed at the supervisor's exit, its last act), median of N.
import { spawn } from 'node:child_process';
import { watch } from 'node:fs';
import { join } from 'node:path';
import { readExit } from '../../src/runner/rundir.ts';
import { spawnSupervisor } from '../../src/runner/spawn.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

const n = Number(process.argv[2] ?? 50);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function once(): Promise<{ exitEvent: number; watched: number }> {
  const dir = join(tempDir(), 'run');
  const t0 = performance.now();
  const child = spawnSupervisor({ dir, argv: ['true'], env: process.env, cwd: '/' });
  child.ref(); // spawnSupervisor unrefs; keep this script alive until it exits
  // inotify on the (just created) dir: when `exit` is renamed into place.
  const watched = new Promise<number>((resolve) => {
    const w = watch(dir, (_e, name) => {
      if (name === 'exit' && readExit(dir)) {
        w.close();
        resolve(performance.now() - t0);
      }
    });
  });
  const exitEvent = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () =>
      readExit(dir) ? resolve(performance.now() - t0) : reject(new Error('no exit record')),
    );
  });
  return { exitEvent, watched: await watched };
}

async function baseline(): Promise<number> {
  const t0 = performance.now();
  await new Promise((r) => spawn('/bin/sh', ['-c', 'true'], { stdio: 'ignore' }).once('exit', r));
  return performance.now() - t0;
}

const runs: { exitEvent: number; watched: number }[] = [];
const base: number[] = [];
for (let i = 0; i < 5; i++) await once(); // warm-up
for (let i = 0; i < n; i++) {
  runs.push(await once());
  base.push(await baseline());
}
removeTempDirs();
const f = (x: number) => `${x.toFixed(1)} ms`;
console.log(`n=${n}`);
console.log(`exit record visible (inotify) median ${f(median(runs.map((r) => r.watched)))}`);
console.log(`supervisor exit event       median ${f(median(runs.map((r) => r.exitEvent)))}`);
console.log(
  `  min ${f(Math.min(...runs.map((r) => r.exitEvent)))} max ${f(Math.max(...runs.map((r) => r.exitEvent)))}`,
);
console.log(`baseline spawn sh -c true   median ${f(median(base))}`);
