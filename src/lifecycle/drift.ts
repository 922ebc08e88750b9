// Scheduled checks and self-heal deploys (SPEC §14.2). No timer per deployment: each deployment's due
// time is a column (slots spread by a hash of its id), one query per pass finds what is due, and one
// timer waits for the earliest. A due check is claimed by a compare-and-set on its due time that moves
// it to the next slot, so among instances each due check runs once; the claim names the instance and
// its lease epoch, which fences the verdict. Due is judged on the database's clock, as for retries.
import { setMaxListeners } from 'node:events';
import type { PlanConfig } from '../config/types.ts';
import {
  healMayStart,
  driftOf,
  HEAL_WINDOW_MS,
  CLAIM_MARGIN_MS,
  nextCheckMs,
  SELF_HEAL_ACTOR_NAME,
} from '../domain/drift.ts';
import { LifelineError } from '../domain/errors.ts';
import { decideDeploy } from '../domain/transitions.ts';
import type { Actor, Attempt, DeploymentState, LifelineEvent } from '../domain/types.ts';
import {
  claimCheck,
  countHeals,
  dropHeal,
  selectDueChecks,
  selectDueHeals,
  selectNextDue,
  selectUnslotted,
  slotCheck,
  unslotOtherPlans,
} from '../store/drift.ts';
import { selectDbNow } from '../store/instances.ts';
import type { DeploymentsTable } from '../store/schema.ts';
import { runCheckProcess, type CheckRun } from './check.ts';
import { startAttempt } from './commands/attempt.ts';
import type { Ctx } from './context.ts';
import { VerdictWriter } from './drift-batch.ts';
import { DueTimer } from './due-timer.ts';
import { transact } from './tx.ts';
import type { Watcher } from './watcher.ts';
import { mayAct } from './watch/may-act.ts';

/** Who runs a scheduled check (the actor of its check_result). */
export const SCHEDULE_ACTOR: Actor = { name: 'schedule', role: 'operator' };
/** Who starts a self-heal deploy. */
export const SELF_HEAL_ACTOR: Actor = { name: SELF_HEAL_ACTOR_NAME, role: 'operator' };

/** Scheduled checks one instance runs at once; due ones past it wait for a free place (or another instance). */
export const MAX_RUNNING_CHECKS = 32;
/** Rows one query reads (seeding, due checks, due heals). */
const BATCH = 200;
const MIN_WAKE_MS = 20;
/**
 * The longest a pass waits to gather what falls due (a tenth of the shortest check_every if less): a
 * thousand checks a minute take about one pass and one claim transaction a second, not one of each
 * per check. So a scheduled check starts up to this long after its slot.
 */
const GATHER_MS = 1000;
/** Refusals that will not pass by themselves: the waiting heal is dropped. */
const NEVER_STARTS = new Set([
  'INVALID_TRANSITION',
  'ATTEMPT_IN_PROGRESS',
  'DEPLOYMENT_UNKNOWN_STATE',
  'VALIDATION',
  'PLAN_NOT_FOUND',
  'NOT_FOUND',
]);

/** The heal was started, dropped or replaced, or is not yet due, when the write re-read it. */
class NotDue extends LifelineError {
  constructor() {
    super('INVALID_TRANSITION', 'no self-heal is due on this deployment');
  }
}

type CheckClaimHeld = NonNullable<CheckRun['claim']>;

export class DriftScheduler {
  private readonly timer = new DueTimer(
    () => this.runDue().catch((err) => this.ctx.outage.failed('drift', err)),
    MIN_WAKE_MS,
  );
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  /** A due check found no place: the end of a running one asks for a pass. */
  private starved = false;
  /** The database's now at the start of the last pass (the gathering window counts from it). */
  private lastPassMs = Number.NEGATIVE_INFINITY;
  private readonly checks = new Map<string, Promise<void>>();
  private readonly verdicts: VerdictWriter;
  private readonly abort = new AbortController();
  private cleaned = false;
  /** Scheduled checks this instance ran (tests, the bench). */
  ran = 0;

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
  ) {
    this.verdicts = new VerdictWriter(ctx);
    // Each running check listens on the one abort signal.
    setMaxListeners(MAX_RUNNING_CHECKS + 8, this.abort.signal);
  }

  private get plans(): PlanConfig[] {
    return Object.values(this.ctx.config.plans).filter((p) => p.checkEveryMs !== null && p.check !== null);
  }

  private gatherMs(plans: PlanConfig[]): number {
    return Math.min(GATHER_MS, ...plans.map((p) => p.checkEveryMs! / 10));
  }

  /** Commits of this instance that may need a pass: a deployment became ready, or drift began. */
  noteEvents(events: LifelineEvent[]): void {
    // A deployment that became ready needs a slot only if some plan has scheduled checks; without one a
    // pass finds nothing to slot, and asking for it cost three statements per attempt (issue 18).
    let slots: boolean | undefined;
    for (const e of events) {
      const ready =
        e.type === 'state_transition' &&
        e.data.entity === 'deployment' &&
        e.data.to === 'ready' &&
        (slots ??= this.plans.length > 0);
      if (ready || (e.type === 'drift_detected' && e.data.heal_at !== undefined)) {
        // With the next gathering pass (a new slot is at least that far off; a heal's delay is random).
        if (this.timer.ready) this.timer.arm(this.lastPassMs + this.gatherMs(this.plans));
        else void this.runDue().catch((err) => this.ctx.outage.failed('drift', err));
        return;
      }
    }
  }

  /** One pass (concurrent callers share it, and one more follows when asked meanwhile). */
  runDue(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass().finally(() => {
      this.running = null;
      if (this.again && !this.closed) {
        this.again = false;
        void this.runDue().catch((err) => this.ctx.outage.failed('drift', err));
      }
    });
    return this.running;
  }

  /** Resolves once the pass and the checks running now have ended (tests; later ones may start). */
  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
    await Promise.all([...this.checks.values()]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer.close();
    this.abort.abort(); // running checks are killed; their next slot comes round as usual
    await this.running?.catch(() => undefined);
    await Promise.all([...this.checks.values()]);
  }

  private async pass(): Promise<void> {
    if (this.closed || !mayAct(this.ctx)) return;
    const plans = this.plans;
    const byName = new Map(plans.map((p) => [p.name, p]));
    const names = [...byName.keys()];
    const { db } = this.ctx.store;
    if (!this.cleaned) {
      await unslotOtherPlans(db, names);
      this.cleaned = true;
    }
    let nowMs = await selectDbNow(db, this.ctx.store.dialect);
    this.lastPassMs = nowMs;
    // Ready deployments without a slot get one: the first slot after now.
    const unslotted = await selectUnslotted(db, names, BATCH);
    for (const r of unslotted) {
      const every = byName.get(r.plan)!.checkEveryMs!;
      await slotCheck(db, r.id, new Date(nextCheckMs(r.id, every, nowMs)).toISOString());
    }
    if (unslotted.length === BATCH) this.again = true;
    // Due checks, as many as there is room for, claimed together.
    const room = MAX_RUNNING_CHECKS - this.checks.size;
    this.starved = room <= 0;
    if (room > 0) {
      const limit = Math.min(BATCH, room);
      const due = await selectDueChecks(db, names, new Date(nowMs).toISOString(), limit);
      if (due.length > 0) {
        if (this.closed || !mayAct(this.ctx)) return;
        const claimed = await this.claim(due, byName, nowMs);
        for (const { dep, claim } of claimed) this.launch(dep, byName.get(dep.plan)!, claim);
      }
      if (due.length === limit) this.starved = true;
      if (due.length === BATCH) this.again = true;
    }
    // Due self-heals.
    for (const r of await selectDueHeals(db, BATCH)) {
      if (this.closed || !mayAct(this.ctx)) return;
      await this.heal(r.id, r.heal_at!);
    }
    const next = await selectNextDue(db, names);
    nowMs = next.nowMs;
    this.timer.setDbNow(nowMs);
    // A due check that found no room waits for a running one to end (that end asks for a pass).
    const check =
      next.check && (!this.starved || Date.parse(next.check) > nowMs) ? Date.parse(next.check) : null;
    const heal = next.heal ? Date.parse(next.heal) : null;
    const times = [check, heal].filter((t): t is number => t !== null);
    // Not before the gathering window is over: what falls due meanwhile is claimed in one go.
    if (times.length > 0)
      this.timer.arm(Math.max(Math.min(...times), this.lastPassMs + this.gatherMs(plans)));
  }

  /**
   * Claims due checks in one transaction (one commit, where a commit each was most of a check's cost
   * on SQLite); each claim is still its own compare-and-set, taken in id order so that two instances
   * claiming at once on Postgres wait for each other rather than deadlock. Returns the claims won.
   */
  private async claim(
    due: DeploymentsTable[],
    byName: Map<string, PlanConfig>,
    nowMs: number,
  ): Promise<{ dep: DeploymentsTable; claim: CheckClaimHeld }[]> {
    const nowIso = new Date(nowMs).toISOString();
    const sorted = [...due].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const { ctx } = this;
    return transact(ctx.store, ctx.bus, async (trx) => {
      const won: { dep: DeploymentsTable; claim: CheckClaimHeld }[] = [];
      for (const dep of sorted) {
        const plan = byName.get(dep.plan)!;
        const claim = {
          owner: ctx.instanceId,
          epoch: ctx.lease.epoch,
          version: Number(dep.version),
          due: dep.next_check_at!,
        };
        const ok = await claimCheck(trx, {
          id: dep.id,
          dueAt: claim.due,
          version: claim.version,
          owner: claim.owner,
          epoch: claim.epoch,
          nextAt: new Date(nextCheckMs(dep.id, plan.checkEveryMs!, nowMs)).toISOString(),
          nowIso,
          until: new Date(nowMs + plan.checkTimeoutMs + CLAIM_MARGIN_MS).toISOString(),
        });
        if (ok) won.push({ dep, claim });
      }
      return { result: won, events: [] };
    });
  }

  private launch(dep: DeploymentsTable, plan: PlanConfig, claim: CheckClaimHeld): void {
    const id = dep.id;
    this.ran++;
    const run = runCheckProcess(this.ctx, dep, plan, SCHEDULE_ACTOR, {
      timeoutMs: plan.checkTimeoutMs,
      signal: this.abort.signal,
      claim,
    })
      .then((ended) => (ended ? this.verdicts.write(ended) : undefined))
      .catch((err) =>
        this.ctx.log.error({ deployment: id, err: (err as Error).message }, 'scheduled check failed'),
      )
      .finally(() => {
        this.checks.delete(id);
        // A check that waited for a place takes this one.
        if (this.starved && !this.closed)
          void this.runDue().catch((err) => this.ctx.outage.failed('drift', err));
      });
    this.checks.set(id, run);
  }

  private async heal(id: string, healAt: string): Promise<void> {
    try {
      await startHeal(this.ctx, this.watcher, id, healAt);
    } catch (err) {
      if (err instanceof NotDue) return; // another instance or an operator got there first
      if (err instanceof LifelineError && NEVER_STARTS.has(err.code)) {
        // It cannot start (no longer drifted, the day's cap, params no longer valid): drop it.
        await dropHeal(this.ctx.store.db, id, healAt);
        this.ctx.log.warn({ deployment: id, detail: err.message }, 'self-heal dropped');
        return;
      }
      this.ctx.log.error({ deployment: id, err: (err as Error).message }, 'self-heal start failed');
    }
  }
}

/**
 * Starts the self-heal waiting on a deployment, if it is still that one and due: an ordinary deploy
 * attempt with the deployment's params, actor `self_heal`, reason `self_heal n/max`. Only from a ready,
 * still drifted deployment (never `unknown`, never beside another attempt), at most retry.max a day.
 */
export function startHeal(
  ctx: Ctx,
  watcher: Watcher,
  deploymentId: string,
  healAt: string,
): Promise<Attempt> {
  return startAttempt(
    ctx,
    watcher,
    'deploy',
    { ref: deploymentId, actor: SELF_HEAL_ACTOR, w: undefined, force: false },
    async (dep, plan, trx) => {
      if (dep.heal_at !== healAt) throw new NotDue();
      const nowMs = await selectDbNow(trx, ctx.store.dialect);
      if (Date.parse(healAt) > nowMs) throw new NotDue();
      const max = plan.retry?.max ?? 0;
      const since = new Date(nowMs - HEAL_WINDOW_MS).toISOString();
      const today = await countHeals(trx, dep.id, since, SELF_HEAL_ACTOR_NAME);
      const drift = driftOf(dep.drift_since, dep.drift_verdict);
      if (!plan.selfHeal || !healMayStart(dep.state as DeploymentState, drift, today, max)) {
        throw new LifelineError(
          'INVALID_TRANSITION',
          `self-heal cannot start: ${dep.state !== 'ready' ? `the deployment is ${dep.state}` : !drift ? 'no drift' : !plan.selfHeal ? 'self_heal is off' : `${today} of ${max} self-heals ran in the last 24 h`}`,
        );
      }
      const params = JSON.parse(dep.params) as Record<string, unknown>;
      const errors = plan.validateParams(params);
      if (errors.length > 0) {
        const why = errors.map((e) => `${e.field} ${e.reason}`).join('; ');
        throw new LifelineError(
          'VALIDATION',
          `the deployment's params no longer match plan ${plan.name}: ${why}`,
        );
      }
      const decision = decideDeploy(dep.state as DeploymentState, false, { isAdmin: false });
      return { decision, params, reason: `self_heal ${today + 1}/${max}` };
    },
  );
}
