// The two marks an active attempt gets before it ends: a cancel was requested, its timeout was
// reached. Each is set once, with its event, and never cleared; the end that follows reads them
// (cancel wins over the exit code, then timeout). Pure: no I/O, no clock.
import type { AttemptState } from './types.ts';

export type Mark = 'cancel_requested_at' | 'timed_out_at';

/** The states in which a mark may still be set: the attempt has not ended (or its end is unknown). */
export const MARKABLE: Record<Mark, readonly AttemptState[]> = {
  cancel_requested_at: ['queued', 'running', 'unknown'],
  timed_out_at: ['running', 'unknown'],
};

/** Its timeout is reached: started, not yet marked, and the deadline (started + timeout) has passed. */
export function decideTimeoutReached(
  a: { state: AttemptState; startedAt: string | null; timeoutMs: number; timedOut: boolean },
  nowMs: number,
): boolean {
  if (a.timedOut || a.startedAt === null || !MARKABLE.timed_out_at.includes(a.state)) return false;
  return nowMs > Date.parse(a.startedAt) + a.timeoutMs;
}

/** An attempt's marks folded from its events (seq order): the stored columns must say the same. */
export function foldMarks(events: { type: string; at: string }[]): Record<Mark, string | null> {
  const out: Record<Mark, string | null> = { cancel_requested_at: null, timed_out_at: null };
  for (const e of events) {
    if (e.type === 'cancel_requested') out.cancel_requested_at ??= e.at;
    if (e.type === 'timeout_reached') out.timed_out_at ??= e.at;
  }
  return out;
}
