// A short attempt's start and end in one transaction (issue 18): when the watcher's first look at a
// queued attempt finds its plan identity and its exit record both written, no output to read, no cancel
// or timeout asked and no verifying check to run, the two writes share one commit: one transaction,
// counter update, fsync and stream read fewer per such attempt. Each is the same guarded write as apart
// (compare-and-set, its events), in the same order; readers see the start and the end at one commit.
import type { ProcessIdentity } from '../runner/identity.ts';
import type { AttemptsTable } from '../store/schema.ts';
import { endDetails, warnClamped, writeEnd, writeStarted, type EndResult } from './attempt-writes.ts';
import type { Ctx } from './context.ts';
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
  let end: EndResult | null = null;
  const started = await transact(ctx.store, ctx.bus, async (trx) => {
    end = null; // a transaction tried again starts over
    const start = await writeStarted(ctx, trx, attemptId, proc, startedAt, plan);
    const row = start.result;
    // Not started here, or a cancel or timeout asked since the caller looked: the usual end decides.
    if (start.events.length === 0 || !row || row.cancel_requested_at !== null || row.timed_out_at !== null)
      return start;
    const outcome = { kind: 'exit', rc: exit.rc, cancelRequested: false, timedOut: false } as const;
    const written = await writeEnd(trx, attemptId, outcome, details);
    end = written;
    return written.ok ? { result: row, events: [...start.events, ...written.events] } : start;
  });
  const written = end as EndResult | null;
  if (written) warnClamped(ctx, attemptId, written);
  return { started, ended: written?.ok === true };
}
