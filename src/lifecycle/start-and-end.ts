// A short attempt's start and end in one transaction (issue 18): when the watcher's first look at a
// queued attempt finds its plan identity and its exit record both written, no output to read, no cancel
// or timeout asked and no verifying check to run, the two writes share one commit: one transaction,
// counter update, fsync and stream read fewer per such attempt. Each is the same guarded write as apart
// (compare-and-set, its events), in the same order; readers see the start and the end at one commit.
import type { ProcessIdentity } from '../runner/identity.ts';
import type { AttemptsTable } from '../store/schema.ts';
import { insertEvents } from '../store/events.ts';
import type { HeldEvents } from '../store/transition.ts';
import { endDetails, warnClamped, writeEnd, writeStarted, type EndResult } from './attempt-writes.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { transact } from './tx.ts';

export interface StartedAndEnded {
  /** The row as the start wrote it, or as found when it was not this owner's to start. */
  started: AttemptsTable | null;
  /** Whether the end was written too; when not, the usual path ends it. */
  ended: boolean;
}

export async function recordStartedAndEnded(
  ctx: Ctx,
  attemptId: string,
  proc: ProcessIdentity,
  startedAt: string,
  plan: string,
  exit: { rc: number; at: number },
  recovered: boolean,
): Promise<StartedAndEnded> {
  const details = endDetails(ctx, {
    rc: exit.rc,
    recovered,
    actor: 'runner',
    endedAt: new Date(exit.at).toISOString(),
  });
  const out = await transact(ctx.store, ctx.bus, async (trx) => {
    // The start's events wait for the end's: one append, the last statement before the commit (on
    // PostgreSQL the event counter's row lock is then held for that statement only).
    const held: HeldEvents = { events: [], offsets: [] };
    const start = await writeStarted(ctx, trx, attemptId, proc, startedAt, plan, held);
    const row = start.result;
    const startOnly = async () => ({
      result: { started: row, end: null as EndResult | null },
      events: await insertEvents(trx, held.events, nowIso(), held.offsets),
    });
    // Not started here, or a cancel or timeout asked since the caller looked: the usual end decides.
    if (held.events.length === 0 || !row || row.cancel_requested_at !== null || row.timed_out_at !== null)
      return startOnly();
    const outcome = { kind: 'exit', rc: exit.rc, cancelRequested: false, timedOut: false } as const;
    const end = await writeEnd(trx, attemptId, outcome, details, row, held);
    if (!end.ok) return startOnly();
    return { result: { started: row, end }, events: end.events };
  });
  if (out.end) warnClamped(ctx, attemptId, out.end);
  return { started: out.started, ended: out.end !== null };
}
