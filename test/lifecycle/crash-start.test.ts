// The start of an attempt: two flaws met while writing the crash test (crash.test.ts).
//
// 1. Seen by the crash test (about one run in three at 20 cycles): an attempt that was just starting
// was declared `unknown` / `start_interrupted` 30-40 ms after it was queued, far inside its start
// deadline, while its supervisor was alive. The deployment went `unknown`, the watcher let go of the
// attempt (no timeout, no cancel, no tailing), and only a later reconcile corrected it from the exit
// record as a `late_result`. The race was in Watcher.step for a queued attempt without a `process`
// file: supervisorAlive() read the `supervisor` file and found none (supervisor.sh had not renamed it
// into place yet), so step called lose('queued'); lose() read the file again, now found it, and took
// "a supervisor trace exists" for "the supervisor died without starting the plan" without checking
// that it was alive. ee3ca3d (lose() decides on one fresh look, liveness first) fixed it; this test
// keeps it fixed. The interleaving is made deterministic by serving the first read of the supervisor
// file from before the rename: every state the runner sees is one supervisor.sh really passes
// through, in its order.
//
// 2. Seen in the code: when supervisor.sh cannot record the plan's identity it does not start the
// plan and leaves an exit record with rc 125 and no `process` file (see its header). The watcher
// then finds a queued attempt, no process, a dead supervisor and an exit record; lose() returns on
// the exit record ("the next pass finishes it"), but no pass ever does, since step() only finishes
// attempts that have a process: the attempt stays `queued` and the deployment `deploying` for ever
// (and recovery adopts it into the same loop). SPEC §2.2: queued -> failed, reason runner_error.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { isAlive, type ProcessIdentity } from '../../src/runner/identity.ts';
import { DIALECTS, keepDurableCommits, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

const view = vi.hoisted(() => ({
  /** The plan has not been recorded yet: `process` reads as absent. */
  hideProcess: false,
  /** The next read of `supervisor` happens just before supervisor.sh renames it into place. */
  supervisorNotYetOnce: false,
}));

vi.mock('../../src/runner/rundir.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/runner/rundir.ts')>();
  return {
    ...real,
    readProcess: (dir: string) => (view.hideProcess ? null : real.readProcess(dir)),
    readSupervisor: (dir: string) => {
      if (view.supervisorNotYetOnce) {
        view.supervisorNotYetOnce = false;
        return null;
      }
      return real.readSupervisor(dir);
    },
  };
});

const { readExit, readProcess, readSupervisor, runDirPaths } = await import('../../src/runner/rundir.ts');

// This suite proves durability: commits as production makes them (synchronous=FULL).
keepDurableCommits();

let engine: Lifeline | null = null;
let dir: string | null = null;
let runDir: string | null = null;

function killGroup(id: ProcessIdentity | null): void {
  if (!id || !isAlive(id)) return;
  try {
    process.kill(-id.pid, 'SIGKILL');
  } catch {
    // gone
  }
}

afterEach(async () => {
  view.hideProcess = false;
  view.supervisorNotYetOnce = false;
  if (runDir) {
    killGroup(readSupervisor(runDir));
    killGroup(readProcess(runDir));
  }
  await engine?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  engine = dir = runDir = null;
});

describe.each(DIALECTS)('the start of an attempt (%s)', (dialect) => {
  it('is not declared start_interrupted while its supervisor is alive, inside the start deadline', async () => {
    dir = tempDir('lifeline-start-race-');
    engine = await startEngine(dir, { start_deadline: '60s' }, dialect);
    await engine.createDeployment({ name: 'starting', plan: 'sleep' }, OPERATOR);
    view.hideProcess = true; // the supervisor is up; the plan is not recorded yet
    const att = await engine.startDeploy('starting', {}, OPERATOR);
    runDir = path.join(dir, 'attempts', att.id);
    const rd = runDir;
    const sup = await waitFor(() => readSupervisor(rd), 'the supervisor file');
    expect(isAlive(sup)).toBe(true);

    // One watcher pass in which the supervisor file lands between the runner's two reads of it.
    view.supervisorNotYetOnce = true;
    await engine.settle();

    const a = await engine.getAttempt(att.id);
    expect(isAlive(sup), 'the supervisor is still alive').toBe(true);
    expect(
      { state: a.state, reason: a.reason },
      'queued a moment ago, supervisor alive: it is starting, not interrupted',
    ).toEqual({ state: 'queued', reason: null });
    expect((await engine.getDeployment('starting')).state).toBe('deploying');

    // Once the plan is recorded it runs as usual. Its record was written while hidden, so no file event
    // comes for it: a watcher pass sees it (else the next safety pass, seconds later, would).
    view.hideProcess = false;
    const e = engine;
    await waitFor(async () => {
      await e.settle();
      return (await e.getAttempt(att.id)).state === 'running';
    }, 'running');
  });

  it('ends when the supervisor could not record the plan and left exit 125 without a process file', async () => {
    dir = tempDir('lifeline-start-125-');
    engine = await startEngine(dir, {}, dialect);
    await engine.createDeployment({ name: 'unrecorded', plan: 'ok' }, OPERATOR);
    view.hideProcess = true; // the runner never sees a recorded plan
    const att = await engine.startDeploy('unrecorded', {}, OPERATOR);
    runDir = path.join(dir, 'attempts', att.id);
    const rd = runDir;
    await waitFor(() => readExit(rd), 'the exit record');
    const sup = readSupervisor(rd)!;
    await waitFor(() => !isAlive(sup), 'the supervisor to exit');
    // Leave exactly what supervisor.sh leaves when `put process` fails: no process file, exit 125.
    const files = runDirPaths(rd);
    fs.rmSync(files.process, { force: true });
    fs.writeFileSync(path.join(rd, '.exit.tmp'), `125 - ${Date.now()}\n`);
    fs.renameSync(path.join(rd, '.exit.tmp'), files.exit);
    view.hideProcess = false;

    const e = engine;
    const ended = await waitFor(
      async () => {
        await e.reconcileNow();
        const a = await e.getAttempt(att.id);
        return a.state === 'queued' ? null : a;
      },
      'the attempt to leave queued',
      5_000,
    ).catch(() => null);
    expect(ended?.state ?? 'still queued', 'a plan that never started: failed/runner_error').toBe('failed');
    expect(ended?.reason).toBe('runner_error');
    expect((await engine.getDeployment('unrecorded')).state).toBe('failed');
  });
});
