// Runs a unit of work in one transaction and wakes event readers after it commits.
import type { Transaction } from 'kysely';
import type { LifelineEvent } from '../domain/types.ts';
import type { Database } from '../store/schema.ts';
import type { Store } from '../store/open.ts';
import { LifelineError } from '../domain/errors.ts';
import { LostRace } from '../store/transition.ts';

export class EventBus {
  /** Transactions that failed for a reason other than a refusal or a lost race (for /metrics). */
  storeErrors = 0;
  private listeners = new Set<(lastSeq: number) => void>();
  /** Called with the events of each commit, before the wake-ups (state-change log lines). */
  onCommit: ((events: LifelineEvent[]) => void) | null = null;
  on(listener: (lastSeq: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(lastSeq: number): void {
    for (const l of this.listeners) {
      try {
        l(lastSeq);
      } catch {
        // a reader's failure is its own
      }
    }
  }
}

export interface Unit<T> {
  result: T;
  events: LifelineEvent[];
}

/**
 * `fn` reads, decides and writes inside the transaction and returns what it appended.
 * A LostRace (another writer won a compare-and-set) rolls back; the unit is re-run so that it decides
 * again on fresh rows (the new decision is usually a clean refusal).
 */
export async function transact<T>(
  store: Store,
  bus: EventBus,
  fn: (trx: Transaction<Database>) => Promise<Unit<T>>,
  retries = 5,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      const unit = await store.db.transaction().execute(fn);
      if (unit.events.length > 0) {
        try {
          bus.onCommit?.(unit.events);
        } catch {
          // logging never undoes a commit
        }
        bus.emit(unit.events[unit.events.length - 1].seq);
      }
      return unit.result;
    } catch (err) {
      if (err instanceof LostRace && attempt < retries) continue;
      if (!(err instanceof LostRace) && !(err instanceof LifelineError)) bus.storeErrors++;
      throw err;
    }
  }
}
