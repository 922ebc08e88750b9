// The verdicts of scheduled checks, written in batches: the checks of one pass end close together, and
// a transaction each (a commit each, synchronous with `synchronous=FULL` on SQLite) was most of what a
// check cost the server. One transaction reads the rows, writes each verdict with its guard, and
// appends all their events at the end, so it takes the row locks first and the events' counter last,
// in the order every single write takes them (no deadlock on Postgres). A verdict that would not be
// a plain one on a ready deployment (stale, or the deployment no longer ready) is written on its own
// afterwards, exactly as `lifeline check` writes it.
import { findPlan } from '../config/load.ts';
import { checkVerdict } from '../domain/transitions.ts';
import type { NewEvent } from '../domain/types.ts';
import { selectDeploymentsByIds } from '../store/drift.ts';
import { insertEvents } from '../store/events.ts';
import { checkResultOf, recordCheck, type CheckEnded } from './check.ts';
import type { Ctx } from './context.ts';
import { recordReadyVerdict } from './drift-verdict.ts';
import { nowIso } from './ids.ts';
import { transact } from './tx.ts';

/** Verdicts one transaction writes at most: on SQLite a transaction is one synchronous step. */
const MAX_BATCH = 64;
/**
 * How long the first verdict waits for others: the checks a pass started together end over some tens
 * of milliseconds, and each transaction saved is a commit and a handful of statements.
 */
const GATHER_MS = 100;

export class VerdictWriter {
  private queue: { ended: CheckEnded; done: () => void; failed: (err: unknown) => void }[] = [];
  private flushing = false;

  constructor(private readonly ctx: Ctx) {}

  /** Resolves once the verdict is written (with the others that ended meanwhile). */
  write(ended: CheckEnded): Promise<void> {
    return new Promise((done, failed) => {
      this.queue.push({ ended, done, failed });
      if (!this.flushing) {
        this.flushing = true;
        setTimeout(() => void this.flush(), GATHER_MS);
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const alone = await writeBatch(
          this.ctx,
          batch.map((b) => b.ended),
        );
        for (const ended of alone) await recordCheck(this.ctx, ended);
        for (const b of batch) b.done();
      } catch (err) {
        for (const b of batch) b.failed(err);
      }
    }
    this.flushing = false;
  }
}

/** Writes the plain verdicts on ready deployments in one transaction; returns the rest. */
async function writeBatch(ctx: Ctx, batch: CheckEnded[]): Promise<CheckEnded[]> {
  const sorted = [...batch].sort((x, y) => (x.dep.id < y.dep.id ? -1 : x.dep.id > y.dep.id ? 1 : 0));
  return transact(ctx.store, ctx.bus, async (trx) => {
    const rows = new Map(
      (
        await selectDeploymentsByIds(
          trx,
          sorted.map((e) => e.dep.id),
        )
      ).map((r) => [r.id, r]),
    );
    const at = nowIso();
    const events: NewEvent[] = [];
    const alone: CheckEnded[] = [];
    for (const ended of sorted) {
      const fresh = rows.get(ended.dep.id);
      const r = checkResultOf(ctx, ended, fresh);
      if (!r || !fresh) continue; // gone, or no longer this instance's to record: nothing
      if (!r.ready) {
        alone.push(ended);
        continue;
      }
      const v = { rc: ended.rc, verdict: checkVerdict(ended.rc), actor: ended.actor.name, result: r.result };
      const plan = findPlan(ctx.config, fresh.plan);
      events.push(...(await recordReadyVerdict(ctx, trx, fresh, plan, v, at, ended.claim)));
    }
    return { result: alone, events: await insertEvents(trx, events, at) };
  });
}
