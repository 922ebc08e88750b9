// Wakes what waits for new events (stream readers, webhook workers) after a commit appended some; the
// events table stays the truth, a wake-up only says "read again".
import type { LifelineEvent } from '../domain/types.ts';

export class EventBus {
  /** Transactions that failed for a reason other than a refusal or a lost race (for /metrics). */
  storeErrors = 0;
  private listeners = new Set<(lastSeq?: number) => void>();
  /** Called with the events of each commit, before the wake-ups (state-change log lines). */
  onCommit: ((events: LifelineEvent[], traceId?: string) => void) | null = null;
  on(listener: (lastSeq?: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** `lastSeq`: the last seq a commit appended; undefined: read anyway (wake-ups may have been lost). */
  emit(lastSeq?: number): void {
    for (const l of this.listeners) {
      try {
        l(lastSeq);
      } catch {
        // a reader's failure is its own
      }
    }
  }
}
