// One look at one watched attempt: whether it is still ours to watch, then its state (started, ended,
// lost), its deadlines, then its output. Each step is at most one bounded transaction of output.
import { isAlive } from '../../runner/identity.ts';
import { readExit, readProcess } from '../../runner/rundir.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import { isStopped, recordStarted, settleLate } from '../attempt-writes.ts';
import { recordStartedAndEnded } from '../start-and-end.ts';
import { endFromExit, endsAtOnce, lose } from './ends.ts';
import type { Host } from './host.ts';
import { attemptStartingUntil, startedAt, supervisorAlive } from './liveness.ts';
import { hasNewOutput, ingest } from './output.ts';
import { enforceDeadlines, stopLeftovers, stopStray } from './signals.ts';
import type { Watch } from './watches.ts';

export async function step(host: Host, id: string, row: AttemptsTable | undefined): Promise<void> {
  const { ctx, watches } = host;
  const w = watches.get(id);
  if (!w) return;
  if (row && reclaimPending(host, row)) {
    // Ours under an earlier registration (the lease lapsed and was taken again): reconcile re-claims
    // it, then wakes every watched attempt. A row read before that claim must not drop the watch
    // (adopt() finds it watched and does nothing), or the attempt would wait for the next safety
    // pass: read it again, and while the claim is still to come, keep watching and do nothing.
    w.recovered = true;
    row = await selectAttemptById(ctx.store.db, id);
    if (row && reclaimPending(host, row)) return;
  }
  if (!row || row.owner !== ctx.instanceId || row.owner_epoch !== ctx.lease.epoch || !row.run_dir) {
    watches.remove(id);
    return;
  }
  if (row.state === 'unknown') {
    await stepUnknown(host, row, w);
    return;
  }
  if (row.state !== 'queued' && row.state !== 'running') {
    watches.remove(id);
    stopStray(host, row);
    return;
  }
  const dir = row.run_dir;
  watches.listen(id, w, dir);
  const proc = readProcess(dir);
  if (row.state === 'queued') {
    if (!proc) {
      const alive = supervisorAlive(dir);
      if (!alive) await lose(host, row, w, 'queued');
      // Still starting: its records (fs.watch), the launcher's answer or this timer wake us.
      if (watches.has(id)) watches.wakeAt(id, w, attemptStartingUntil(host, row, w, alive));
      return;
    }
    const exited = endsAtOnce(host, row, w);
    const after = exited
      ? await recordStartedAndEnded(ctx, id, proc, startedAt(dir), w.plan!, exited, w.recovered)
      : { started: await recordStarted(ctx, id, proc, startedAt(dir), w.plan ?? undefined), ended: false };
    if (after.ended || !after.started) {
      watches.remove(id);
      return;
    }
    row = after.started;
    // Moved on meanwhile (ended, taken over): the next look decides, on the row as it is then.
    if (row.state !== 'running' || row.owner !== ctx.instanceId) {
      host.again(id);
      return;
    }
  }
  if (!proc) {
    await lose(host, row, w, 'running');
    return;
  }
  // An exit record already there decides (most looks at a short attempt): no liveness reads. Else
  // liveness before reading it again: a supervisor that writes the record and exits between the two
  // reads is then still seen as alive, never as lost.
  let exit = readExit(dir);
  if (!exit) {
    const alive = isAlive(proc) || supervisorAlive(dir);
    exit = readExit(dir);
    if (!exit && !alive) {
      await lose(host, row, w, 'running');
      return;
    }
  }
  if (exit) {
    await endFromExit(host, row, proc, w, exit);
    return;
  }
  // Deadlines first and whatever ingestion does: output that cannot be read never stops a cancel.
  await enforceDeadlines(host, row, proc, w);
  if (hasNewOutput(row) && (await ingest(host, id, w, false))) host.moreOutput(id);
}

/** Active, ours, but under an epoch of ours that has lapsed: reconcile's claim is still to come. */
function reclaimPending(host: Host, row: AttemptsTable): boolean {
  return (
    row.owner === host.ctx.instanceId &&
    Number(row.owner_epoch ?? 0) !== host.ctx.lease.epoch &&
    (row.state === 'queued' || row.state === 'running')
  );
}

/**
 * An `unknown` attempt whose process still lives here (recovery adopted it): supervised as before,
 * so its timeout and a cancel still stop it, and its exit record corrects it (`late_result`).
 */
async function stepUnknown(host: Host, row: AttemptsTable, w: Watch): Promise<void> {
  const dir = row.run_dir!;
  host.watches.listen(row.id, w, dir);
  const proc = readProcess(dir);
  const alive = (proc !== null && isAlive(proc)) || supervisorAlive(dir);
  const exited = readExit(dir) !== null;
  // A stopped one (cancel, timeout) is settled or let go only once nothing of its group is left.
  if (proc && isStopped(row) && (exited || !alive) && !stopLeftovers(host, row, proc, w)) return;
  if (exited) {
    host.watches.remove(row.id);
    await settleLate(host.ctx, row);
    return;
  }
  if (!alive || !proc) {
    // Nothing left to supervise (or never started): it stays unknown until evidence or an operator.
    if (!alive) host.watches.remove(row.id);
    return;
  }
  await enforceDeadlines(host, row, proc, w);
  if (hasNewOutput(row) && (await ingest(host, row.id, w, false))) host.moreOutput(row.id);
}
