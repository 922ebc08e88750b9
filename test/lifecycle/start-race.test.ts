// A short attempt that starts and ends while the watcher is between two reads of its run dir is not
// lost. On a busy machine the server can be preempted between reading the supervisor's identity and
// the plan's: the supervisor records itself, starts the plan, the plan runs to its end, and the
// supervisor is still making the exit record durable. Read supervisor first, that looked like "no
// supervisor, a dead plan, no exit record" and the attempt went `unknown` (seen in the suite's
// metrics test under load). Here the whole start happens right after the k-th read of an identity
// record, for every k the watcher gets to: the attempt must end as its exit record says.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import type { Launcher, SupervisorHandle } from '../../src/runner/launcher.ts';
import { bootId, readStat } from '../../src/runner/identity.ts';
import type { SpawnSupervisorOptions } from '../../src/runner/spawn.ts';
import { ADMIN, dialectConfig, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';

/** Called after each read of an identity record (`supervisor` or `process`) of a run dir. */
const hook = vi.hoisted(() => ({ onIdentityRead: (_file: string) => {} }));
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const readFileSync = ((file: fs.PathOrFileDescriptor, ...rest: unknown[]) => {
    try {
      return (real.readFileSync as (...a: unknown[]) => unknown)(file, ...rest);
    } finally {
      if (typeof file === 'string' && /\/(supervisor|process)$/.test(file)) hook.onIdentityRead(file);
    }
  }) as typeof real.readFileSync;
  return { ...real, default: { ...real, readFileSync }, readFileSync };
});

class Handle extends EventEmitter implements SupervisorHandle {
  pid?: number;
  exitCode: number | null = null;
}

/** Starts nothing itself: the test writes the run dir's records when it chooses. */
class Scripted implements Launcher {
  dir = '';
  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    this.dir = path.resolve(opts.dir);
    return new Handle();
  }
  lastProgressAt(): number {
    return 0;
  }
  close(): void {}
}

let engine: Lifeline | null = null;
const sleepers: ChildProcess[] = [];
afterEach(async () => {
  hook.onIdentityRead = () => {};
  await engine?.close();
  engine = null;
  for (const p of sleepers.splice(0)) p.kill('SIGKILL');
});

const line = (pid: number, start: string) => `${pid} ${start} ${bootId()}\n`;

describe('a whole start between two reads of the run dir', () => {
  it.each([1, 2, 3, 4])('after identity read %i: the attempt ends as its exit record says', async (k) => {
    const launcher = new Scripted();
    const config = await dialectConfig('sqlite', tempDir());
    engine = await openLifeline({ config, logger: quietLogger(), wrapLauncher: () => launcher });
    await engine.start();

    // The "supervisor": a live process, still making the exit record durable when the plan is dead.
    const sup = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
    sleepers.push(sup);
    await new Promise((r) => sup.once('spawn', r));
    const supStart = readStat(sup.pid!)!.start;

    let reads = 0;
    let started = false;
    hook.onIdentityRead = (file) => {
      if (started || !launcher.dir || !file.startsWith(launcher.dir + path.sep) || ++reads < k) return;
      started = true;
      // Supervisor record, then the plan's (a pid whose start time is not its own: a dead plan), its
      // output; the exit record comes a little later, then the supervisor exits.
      fs.writeFileSync(path.join(launcher.dir, 'supervisor'), line(sup.pid!, supStart));
      fs.writeFileSync(path.join(launcher.dir, 'process'), line(sup.pid!, '1'));
      fs.writeFileSync(path.join(launcher.dir, 'stdout'), 'done\n');
      fs.writeFileSync(path.join(launcher.dir, 'stderr'), '');
      setTimeout(() => {
        fs.writeFileSync(path.join(launcher.dir, 'exit'), `0 - ${Date.now()}\n`);
        sup.kill('SIGKILL');
      }, 300);
    };

    await engine.createDeployment({ name: `race-${k}`, plan: 'ok' }, ADMIN);
    const a = await engine.startDeploy(`race-${k}`, {}, ADMIN);
    const end = await waitFor(
      async () => {
        const now = await engine!.getAttempt(a.id);
        return now.state === 'queued' || now.state === 'running' ? null : now;
      },
      `attempt ${a.id} to end`,
      20_000,
    );
    expect(started, `the start happened after identity read ${k}`).toBe(true);
    expect(end).toMatchObject({ state: 'succeeded', rc: 0, reason: null });
  });
});
