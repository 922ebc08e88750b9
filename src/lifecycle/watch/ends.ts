// How a watched attempt ends: from its exit record (after its output and, on exit 0, its verifying
// check), or as lost when nothing of it is alive and no record says how it ended.
import { findPlan } from '../../config/load.ts';
import { checkVerdict, verifiedBy } from '../../domain/transitions.ts';
import type { AttemptKind } from '../../domain/types.ts';
import type { ProcessIdentity } from '../../runner/identity.ts';
import { anyAlive, readExit, readIdentities, readProcess, type ExitRecord } from '../../runner/rundir.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import { endAttempt, isStopped, type EndDetails } from '../attempt-writes.ts';
import type { Host } from './host.ts';
import { attemptStartingUntil } from './liveness.ts';
import { hasNewOutput, ingest } from './output.ts';
import { verify } from './verify.ts';
import { stopLeftovers } from './signals.ts';
import type { Watch } from './watches.ts';

/**
 * The exit record is there: one bounded transaction per turn, and the end once the output is all in
 * (and, after exit 0 of a verified kind, once its check has answered).
 */
export async function endFromExit(
  host: Host,
  row: AttemptsTable,
  proc: ProcessIdentity,
  w: Watch,
  exit: ExitRecord,
): Promise<void> {
  const { ctx } = host;
  const id = row.id;
  // Files no longer than the cursors have nothing to ingest (cursors only grow, so an older row only
  // errs towards reading): the exit of a quiet plan is then recorded without reading them.
  if (hasNewOutput(row)) {
    if (await ingest(host, id, w, true)) {
      host.again(id);
      return;
    }
    if (w.ingestFailures > 0) return; // retried shortly (then skipped, marked)
  }
  const fresh = (await selectAttemptById(ctx.store.db, id))!;
  const cancelRequested = fresh.cancel_requested_at !== null;
  const timedOut = fresh.timed_out_at !== null;
  // Stopped means stopped: not reported ended while anything of its group is still alive.
  if ((cancelRequested || timedOut) && !stopLeftovers(host, fresh, proc, w)) return;
  let check: EndDetails['check'];
  let unverified = false;
  if (exit.rc === 0 && !cancelRequested && !timedOut) {
    const verdict = await verify(host, fresh, w);
    if (verdict === 'pending') return; // the check's end wakes the attempt
    if (host.watches.get(id) !== w) return; // unwatched meanwhile (closing): not ours to end
    if (verdict) {
      check = verdict;
      unverified = !verifiedBy(fresh.kind as AttemptKind, checkVerdict(verdict.rc));
    }
  }
  await endAttempt(
    ctx,
    id,
    { kind: 'exit', rc: exit.rc, cancelRequested, timedOut, unverified },
    {
      rc: exit.rc,
      recovered: w.recovered,
      actor: 'runner',
      endedAt: new Date(exit.at).toISOString(),
      check,
    },
  );
  host.watches.remove(id);
}

/**
 * The exit record of a queued attempt whose start and end may be one write (start-and-end.ts): its
 * plan known from the launch, no cancel or timeout asked, no verifying check to run, no output to read.
 */
export function endsAtOnce(host: Host, row: AttemptsTable, w: Watch): ExitRecord | null {
  if (w.plan === null || row.cancel_requested_at !== null || row.timed_out_at !== null) return null;
  const exit = readExit(row.run_dir!);
  if (!exit) return null;
  if (exit.rc === 0) {
    const plan = findPlan(host.ctx.config, w.plan);
    if (!plan || (plan.check && plan.verify[row.kind as AttemptKind])) return null;
  }
  return hasNewOutput(row) ? null : exit;
}

/**
 * Nothing alive and no exit record: the outcome is lost. Decided on a fresh look, liveness first,
 * then the exit record: a supervisor writes its record before it dies, so a dead one with no record
 * never wrote it. A queued attempt without any supervisor trace waits for its start deadline.
 */
export async function lose(
  host: Host,
  stale: AttemptsTable,
  w: Watch,
  seen: 'queued' | 'running',
): Promise<void> {
  const dir = stale.run_dir!;
  const ids = readIdentities(dir);
  const { sup, proc } = ids;
  if (anyAlive(ids)) return;
  // The row too is read after the processes were seen dead: a cancel requested while this step ran
  // (seen first on Postgres, where a step's reads take longer) must count as the reason they are gone.
  const row = (await selectAttemptById(host.ctx.store.db, stale.id)) ?? stale;
  if (readExit(dir)) {
    // A record without a plan identity: the supervisor could not record the plan, so never started it.
    // The identity is read again after the exit record (it is written first): a plan that started and
    // ended while this step awaited the row has both records now and did start.
    if (!(proc ?? readProcess(dir))) {
      const detail = 'the supervisor could not record the plan, so did not start it';
      await end(host, row, w, { kind: 'start_failed' }, detail);
    } else host.again(row.id); // with a plan identity, the next turn finishes it from the record
    return;
  }
  // Stopped means stopped, whatever the end: a cancelled or timed-out plan that died without its
  // supervisor leaves no child of its group behind either.
  if (proc && isStopped(row) && !stopLeftovers(host, row, proc, w)) return;
  if (seen === 'running' && row.cancel_requested_at !== null) {
    // Cancel is proven by the process being gone (SPEC §2.2), even when it left no exit code; and
    // by nothing of its group being left.
    await end(host, row, w, {
      kind: 'exit',
      rc: null,
      cancelRequested: true,
      timedOut: row.timed_out_at !== null,
    });
    return;
  }
  let reason: 'exit_unobserved' | 'start_interrupted' = 'exit_unobserved';
  if (seen === 'queued' && !proc) {
    if (!sup && Date.now() < attemptStartingUntil(host, row, w, false)) return;
    // It never started and now cannot: a cancel asked meanwhile is done (as recovery does).
    if (row.cancel_requested_at !== null) {
      await end(host, row, w, { kind: 'cancelled_before_start' });
      return;
    }
    reason = 'start_interrupted';
  }
  // What the decision saw, for whoever asks why an attempt went unknown.
  host.ctx.log.warn(
    {
      attempt_id: row.id,
      reason,
      seen,
      supervisor: sup ? { pid: sup.pid, start: sup.start } : null,
      plan: proc ? { pid: proc.pid, start: proc.start } : null,
      exit_record: false,
    },
    'attempt lost: no exit record, and neither its supervisor nor its plan is alive',
  );
  await end(host, row, w, { kind: 'lost', reason });
}

/** Ends an attempt no exit code speaks for, after draining its output. */
async function end(
  host: Host,
  row: AttemptsTable,
  w: Watch,
  outcome: Parameters<typeof endAttempt>[2],
  detail?: string,
): Promise<void> {
  while ((await ingest(host, row.id, w, true)) || w.ingestFailures > 0)
    await new Promise((r) => setImmediate(r));
  await endAttempt(host.ctx, row.id, outcome, {
    rc: null,
    recovered: w.recovered,
    actor: 'runner',
    detail,
  });
  host.watches.remove(row.id);
}
