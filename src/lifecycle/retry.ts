// Starts scheduled retries when they are due (SPEC §9.1): a timer for the next one, the reconcile
// safety pass, and start-up. Exactly once across instances and restarts: the start is the ordinary
// deploy write, guarded by a compare-and-set on the schedule it clears, so a second starter loses.
// Due is judged on the database's clock only: an instance whose own clock is off starts nothing early
// or late; its clock (a monotonic one) only times when to look again.
import { LifelineError } from '../domain/errors.ts';
import { decideDeploy } from '../domain/transitions.ts';
import type { Actor, Attempt, DeploymentState, LifelineEvent } from '../domain/types.ts';
import { selectAttemptById } from '../store/attempts.ts';
import { selectDueRetries, selectNextRetryAt } from '../store/deployments.ts';
import { selectDbNow } from '../store/instances.ts';
import { applyTransition, NO_RETRY } from '../store/transition.ts';
import { startAttempt } from './commands/attempt.ts';
import { asRead } from './commands/guards.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { deploymentByRef } from './queries.ts';
import { transact } from './tx.ts';
import { DueTimer } from './due-timer.ts';
import type { Watcher } from './watcher.ts';
import { mayAct } from './watch/may-act.ts';

/** Who starts a retry: recorded as the actor of its transitions. */
export const RETRY_ACTOR: Actor = { name: 'retry', role: 'operator' };

/** How many due retries one pass starts; the rest wait for the next pass, which follows at once. */
const BATCH = 50;

/** Refusals that will not pass by themselves: the retry is dropped with a `retry_cancelled` saying why. */
const NEVER_STARTS = new Set(['VALIDATION', 'PLAN_NOT_FOUND', 'NOT_FOUND']);

/** The schedule was gone (started, cancelled, replaced) or not yet due when the write re-read it. */
class NotDue extends LifelineError {
  constructor() {
    super('INVALID_TRANSITION', 'no retry is due on this deployment');
  }
}

export class RetryStarter {
  private running: Promise<number> | null = null;
  private again = false;
  private closed = false;
  private readonly timer = new DueTimer(() =>
    this.runDue().catch((err) => this.ctx.outage.failed('retry', err)),
  );

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
  ) {}

  /** A commit of this instance scheduled a retry: wake up when it is due. */
  noteEvents(events: LifelineEvent[]): void {
    for (const e of events) {
      if (e.type !== 'retry_scheduled' || typeof e.data.at !== 'string') continue;
      // Not yet read the database's clock: a pass reads it and arms from there.
      if (!this.timer.ready) void this.runDue().catch((err) => this.ctx.outage.failed('retry', err));
      else this.timer.arm(Date.parse(e.data.at));
    }
  }

  /** Starts every due retry (concurrent callers share one pass); resolves to how many it started here. */
  runDue(): Promise<number> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass().finally(() => {
      this.running = null;
      if (this.again && !this.closed) {
        this.again = false;
        void this.runDue().catch((err) => this.ctx.outage.failed('retry', err));
      }
    });
    return this.running;
  }

  close(): Promise<unknown> {
    this.closed = true;
    this.timer.close();
    return this.running?.catch(() => undefined) ?? Promise.resolve();
  }

  private async pass(): Promise<number> {
    if (this.closed || !mayAct(this.ctx)) return 0;
    let started = 0;
    for (;;) {
      const due = await selectDueRetries(this.ctx.store.db, BATCH);
      let settled = 0;
      for (const row of due) {
        if (this.closed) return started;
        const outcome = await this.startOne(row.id, row.retry_attempt_id!);
        if (outcome === 'started') started++;
        if (outcome !== 'failed') settled++;
      }
      // A full batch that made progress may hide more; one that did not waits for the next pass.
      if (due.length < BATCH || settled === 0) break;
    }
    const next = await selectNextRetryAt(this.ctx.store.db);
    this.timer.setDbNow(next.nowMs);
    if (next.at !== null) this.timer.arm(Date.parse(next.at));
    return started;
  }

  private async startOne(deploymentId: string, failedId: string): Promise<'started' | 'settled' | 'failed'> {
    try {
      await startRetry(this.ctx, this.watcher, deploymentId, failedId);
      return 'started';
    } catch (err) {
      if (err instanceof NotDue) return 'settled'; // another instance (or an operator) got there first
      if (err instanceof LifelineError && NEVER_STARTS.has(err.code)) {
        // It can never start as scheduled (plan gone, params no longer valid): say so and drop it.
        await dropRetry(this.ctx, deploymentId, failedId, err.message);
        return 'settled';
      }
      // Anything else (the store, a write that kept losing) may pass: the next pass tries again.
      this.ctx.log.error({ deployment: deploymentId, err: (err as Error).message }, 'retry start failed');
      return 'failed';
    }
  }
}

/**
 * Starts the retry scheduled on a deployment, if it is still the one waiting on `failedId` and due:
 * an ordinary deploy attempt with the failed attempt's params, actor `retry`, reason `retry n/max`.
 */
export function startRetry(
  ctx: Ctx,
  watcher: Watcher,
  deploymentId: string,
  failedId: string,
): Promise<Attempt> {
  return startAttempt(
    ctx,
    watcher,
    'deploy',
    { ref: deploymentId, actor: RETRY_ACTOR, w: undefined, force: false },
    async (dep, plan, trx) => {
      if (dep.retry_attempt_id !== failedId || dep.retry_at == null) throw new NotDue();
      if (Date.parse(dep.retry_at) > (await selectDbNow(trx, ctx.store.dialect))) throw new NotDue();
      const failed = await selectAttemptById(trx, failedId);
      if (!failed) throw new LifelineError('NOT_FOUND', `the failed attempt ${failedId} is gone`);
      const params = JSON.parse(failed.params) as Record<string, unknown>;
      const errors = plan.validateParams(params);
      if (errors.length > 0) {
        const why = errors.map((e) => `${e.field} ${e.reason}`).join('; ');
        throw new LifelineError(
          'VALIDATION',
          `the failed attempt's params no longer match plan ${plan.name}: ${why}`,
        );
      }
      const decision = decideDeploy(dep.state as DeploymentState, false, { isAdmin: false });
      const retry = { number: Number(dep.retry_number), of: Number(dep.retry_of), failedId };
      return { decision, params, retry };
    },
  );
}

/** Clears a schedule that cannot run, with a `retry_cancelled` event saying why. */
async function dropRetry(ctx: Ctx, deploymentId: string, failedId: string, detail: string): Promise<void> {
  await transact(ctx.store, ctx.bus, async (trx) => {
    const dep = await deploymentByRef(trx, deploymentId);
    if (dep.retry_attempt_id !== failedId) return { result: undefined, events: [] };
    const events = await applyTransition(trx, {
      at: nowIso(),
      actor: RETRY_ACTOR.name,
      deployment: { ...asRead(dep), set: NO_RETRY, expectRetryOf: failedId },
      eventsAfter: [
        {
          type: 'retry_cancelled',
          deployment_id: dep.id,
          attempt_id: failedId,
          data: {
            number: Number(dep.retry_number),
            of: Number(dep.retry_of),
            at: dep.retry_at,
            actor: RETRY_ACTOR.name,
            detail,
          },
        },
      ],
    });
    return { result: undefined, events };
  });
  ctx.log.warn({ deployment: deploymentId, detail }, 'scheduled retry dropped');
}
