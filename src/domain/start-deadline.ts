// The one start-deadline rule (SPEC §5): until when a queued attempt with no plan identity yet counts
// as starting rather than lost. Pure: the caller says what it saw and on which clock it measures.

export interface StartEvidence {
  /** Now, on the caller's clock. */
  now: number;
  /** When the attempt was queued, converted to the caller's clock. */
  queuedAt: number;
  /** Later signs of progress on the same clock (the launcher asked or answered, its owner was seen). */
  progress: number[];
  /** A supervisor is known to be alive for it (its trace, or one this instance forked): it is starting. */
  starting: boolean;
}

/** The time (on the evidence's clock) after which a queued attempt that never started is lost. */
export function startingUntil(e: StartEvidence, deadlineMs: number): number {
  if (e.starting) return e.now + deadlineMs;
  return Math.max(e.queuedAt, ...e.progress) + deadlineMs;
}
