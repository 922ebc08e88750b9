// Runs a unit of work in one transaction, re-runs it when a concurrent writer won, and wakes event
// readers after it commits: this instance's at once, other instances' through a Postgres NOTIFY queued
// inside the transaction by the seq reservation itself (delivered on commit; see store/events.ts).
import type { Transaction } from 'kysely';
import type { LifelineEvent } from '../domain/types.ts';
import type { Database } from '../store/schema.ts';
import type { Store } from '../store/open.ts';
import { LifelineError } from '../domain/errors.ts';
import { isNameTaken } from '../store/deployments.ts';
import { classifyStoreError } from '../store/errors.ts';
import { LostRace } from '../store/transition.ts';
import { IdempotentReplay, type IdempotencyKey, type WriteOptions } from './api.ts';
import type { EventBus } from './event-bus.ts';
import { recordKey, refuseCommittedKey } from './idempotency.ts';

export interface Unit<T> {
  result: T;
  events: LifelineEvent[];
}

/** Backoff before re-running a unit: full jitter over an exponential cap, so contenders spread out. */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(250, 5 * 2 ** attempt);
}

/**
 * `fn` reads, decides and writes inside the transaction and returns what it appended. With `key` (a
 * request's Idempotency-Key, SPEC §6) the key row commits in the same transaction, so a crash leaves
 * both or neither; a twin that committed the key first makes this throw IdempotentReplay instead.
 *
 * Concurrent writers on Postgres meet in three ways, and each rolls the unit back and re-runs it so that
 * it decides again on fresh rows (the new decision is usually a clean refusal such as
 * DEPLOYMENT_EXISTS or ATTEMPT_IN_PROGRESS):
 * - a LostRace: a compare-and-set matched zero rows;
 * - a unique violation (23505): two creates of one name, two deploys numbering the same attempt, or
 *   two requests with one Idempotency-Key (the re-run finds the winner's key and replays it);
 *   the loser waited for the winner's commit, so the re-run sees the winner's rows;
 * - a serialization failure or deadlock (40001, 40P01), which the database asks us to retry.
 * After `retries` re-runs the caller gets a 409 (a conflict that keeps losing) or a 503 (the database
 * keeps refusing), never a 500. Outages (lost connection, refused connect) are not retried here: they
 * reach the caller as they are and answer 503 STORE_UNAVAILABLE.
 */
export async function transact<T>(
  store: Store,
  bus: EventBus,
  fn: (trx: Transaction<Database>) => Promise<Unit<T>>,
  opts: { key?: IdempotencyKey; retries?: number; traceId?: string } = {},
): Promise<T> {
  const { key: keyed, retries = 8, traceId } = opts;
  for (let attempt = 0; ; attempt++) {
    try {
      const unit = await store.db.transaction().execute(async (trx) => {
        if (keyed) await refuseCommittedKey(trx, keyed);
        const u = await fn(trx);
        if (keyed) await recordKey(trx, keyed, u.result);
        crashPoint('before_commit');
        return u;
      });
      crashPoint('after_commit');
      if (unit.events.length > 0) {
        try {
          bus.onCommit?.(unit.events, traceId);
        } catch {
          // logging never undoes a commit
        }
        bus.emit(unit.events[unit.events.length - 1].seq);
      }
      return unit.result;
    } catch (err) {
      const kind = err instanceof LostRace ? 'conflict' : classifyStoreError(err);
      if (kind !== 'conflict' && kind !== 'retry') {
        if (!(err instanceof LifelineError) && !(err instanceof IdempotentReplay)) bus.storeErrors++;
        throw err;
      }
      if (attempt < retries) {
        // The first re-run after a lost race goes at once: the winner has committed already.
        if (kind === 'retry' || attempt > 0) await new Promise((r) => setTimeout(r, backoffMs(attempt)));
        continue;
      }
      throw exhausted(kind, err);
    }
  }
}

/** A write command's transaction: `transact` with the caller's Idempotency-Key and request id, if given. */
export function transactCommand<T>(
  store: Store,
  bus: EventBus,
  w: WriteOptions | undefined,
  fn: (trx: Transaction<Database>) => Promise<Unit<T>>,
): Promise<T> {
  return transact(store, bus, fn, { key: w?.idempotency, traceId: w?.traceId });
}

/**
 * Test-only crash points (NODE_ENV=test and LIFELINE_TEST_CRASH_AT): the process dies by SIGKILL just
 * before or just after a write commits, so tests can prove a retry after a crash is safe. Read once at
 * start: the environment is a slow lookup on every write.
 */
const CRASH_AT = process.env.NODE_ENV === 'test' ? process.env.LIFELINE_TEST_CRASH_AT : undefined;

function crashPoint(at: 'before_commit' | 'after_commit'): void {
  if (CRASH_AT === at) {
    process.kill(process.pid, 'SIGKILL');
  }
}

function exhausted(kind: 'conflict' | 'retry', err: unknown): LifelineError {
  if (kind === 'retry') {
    return new LifelineError('STORE_UNAVAILABLE', 'the database kept aborting this write; retry later');
  }
  if (isNameTaken(err)) {
    return new LifelineError('DEPLOYMENT_EXISTS', 'a deployment of that name was created concurrently');
  }
  return new LifelineError('INVALID_TRANSITION', 'the deployment kept changing under this write; retry');
}
