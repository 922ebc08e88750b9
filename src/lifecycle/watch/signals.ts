// Timeout and cancel: the attempt's deadline is marked, then SIGTERM to the plan's process group (and
// to descendants that left it), SIGKILL after the cancel grace. Only a delivered signal counts.
import type { AttemptsTable } from '../../store/schema.ts';
import {
  descendants,
  groupMembers,
  isAlive,
  processGroupOf,
  signalGroup,
  signalProcess,
  type ProcessIdentity,
} from '../../runner/identity.ts';
import { readExit, readProcess } from '../../runner/rundir.ts';
import { nowIso } from '../ids.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import { markTimedOut } from '../attempt-writes.ts';
import type { Host } from './host.ts';
import { mayAct } from './may-act.ts';
import type { Watch } from './watches.ts';

/** Retry of a signal the plan's group was not ready for (a few ms after its identity is written). */
export const SIGNAL_RETRY_MS = 50;

export async function enforceDeadlines(
  host: Host,
  row: AttemptsTable,
  proc: ProcessIdentity,
  w: Watch,
): Promise<void> {
  const { ctx, watches } = host;
  // Asked again here, and before each signal below: a step's awaits can outlast the lease.
  if (!mayAct(ctx)) return;
  const now = Date.now();
  const deadline = row.started_at ? Date.parse(row.started_at) + Number(row.timeout_ms) : null;
  if (row.timed_out_at === null && deadline !== null && now > deadline) {
    // A fenced write with its event. Refused: marked already (this row is older), or not ours to
    // stop (lapsed, taken over; the next step lets it go).
    if (await markTimedOut(ctx, row.id, now)) {
      row = { ...row, timed_out_at: nowIso() };
      ctx.log.info({ attempt: row.id }, 'attempt timed out; terminating');
    } else {
      const fresh = await selectAttemptById(ctx.store.db, row.id);
      if (!fresh || fresh.timed_out_at === null) return;
      row = { ...row, timed_out_at: fresh.timed_out_at, cancel_requested_at: fresh.cancel_requested_at };
    }
  }
  if (row.cancel_requested_at === null && row.timed_out_at === null) {
    if (deadline !== null) watches.wakeAt(row.id, w, deadline + 1);
    return;
  }
  // signalGroup refuses until the plan's group exists (a few ms after its identity is written):
  // only a delivered signal counts, otherwise a timer tries again.
  const grace = Number(row.cancel_grace_ms);
  // Descendants are looked up before the group is signalled, while they are still below the plan
  // (once it dies they are reparented); only those that left its group (setsid) get their own signal,
  // after the group's, so the plan sees its group signalled exactly as before.
  const family = (signal: NodeJS.Signals) => {
    for (const d of descendants(proc)) if (!w.family.some((f) => f.pid === d.pid)) w.family.push(d);
    return () => {
      for (const d of w.family) if (processGroupOf(d.pid) !== proc.pid) signalProcess(d, signal);
    };
  };
  if (!mayAct(ctx)) return;
  if (w.termSentAt === null) {
    const strays = family('SIGTERM');
    if (signalGroup(proc, 'SIGTERM')) w.termSentAt = now;
    strays();
    watches.wakeAt(row.id, w, w.termSentAt === null ? now + SIGNAL_RETRY_MS : now + grace);
  } else if (!w.killSent && now - w.termSentAt >= grace) {
    const strays = family('SIGKILL');
    if (signalGroup(proc, 'SIGKILL')) w.killSent = true;
    else watches.wakeAt(row.id, w, now + SIGNAL_RETRY_MS);
    strays();
  } else if (!w.killSent) {
    watches.wakeAt(row.id, w, w.termSentAt + grace);
  }
}

/** A process still alive for an attempt cancelled before start (the cancel won a race with the launch). */
export function stopStray(host: Host, row: AttemptsTable): void {
  if (row.state !== 'cancelled' || !mayAct(host.ctx)) return;
  const proc = readProcess(row.run_dir!);
  if (proc && !readExit(row.run_dir!) && isAlive(proc)) signalGroup(proc, 'SIGKILL');
}

/**
 * Before a cancelled or timed-out attempt is reported ended: what is left of the plan's group (a
 * child that ignored SIGTERM outlives the plan, whose exit record then comes first) and of its tracked
 * family gets SIGTERM, then SIGKILL after the cancel grace. True once nothing of it is left alive.
 */
export function stopLeftovers(host: Host, row: AttemptsTable, proc: ProcessIdentity, w: Watch): boolean {
  const left = [...groupMembers(proc), ...w.family.filter((f) => isAlive(f))];
  if (left.length === 0) return true;
  if (!mayAct(host.ctx)) return false;
  const now = Date.now();
  const grace = Number(row.cancel_grace_ms);
  const send = (signal: NodeJS.Signals) => {
    signalGroup(proc, signal);
    for (const f of w.family) if (processGroupOf(f.pid) !== proc.pid) signalProcess(f, signal);
  };
  if (w.termSentAt === null) {
    send('SIGTERM');
    w.termSentAt = now;
    host.watches.wakeAt(row.id, w, now + grace);
  } else if (now - w.termSentAt >= grace) {
    send('SIGKILL');
    w.killSent = true;
    host.watches.wakeAt(row.id, w, now + SIGNAL_RETRY_MS); // gone a moment after SIGKILL
  } else {
    host.watches.wakeAt(row.id, w, w.termSentAt + grace);
  }
  host.ctx.log.info(
    { attempt: row.id, left: left.map((p) => p.pid) },
    'the plan exited but processes of its group live on; stopping them before recording the end',
  );
  return false;
}
