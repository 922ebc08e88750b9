// Opens waiting attempts when a gate lets them through, launches what it opened, and cancels waits that
// expired (SPEC §13). Nothing polls per attempt: a freed slot wakes it (this instance's commits through
// the event bus, other instances' through the Postgres NOTIFY sent by the freeing transaction), the
// earliest expiry arms one timer, and the reconcile pass is the safety net for anything missed (a
// notification lost, an instance that died between a commit and its wake-up).
import { findPlan } from '../../config/load.ts';
import { EXPIRED_REASON, type GateName } from '../../domain/gates.ts';
import type { LifelineEvent } from '../../domain/types.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import { selectDeploymentById } from '../../store/deployments.ts';
import {
  deleteGateRows,
  selectExpiredWaits,
  selectNextExpiry,
  selectQueueHead,
  selectSlots,
  selectWaitingKeys,
} from '../../store/gates.ts';
import { writeEnd } from '../attempt-writes.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { transact } from '../tx.ts';
import type { LaunchSpec, Watcher } from '../watcher.ts';
import { mayAct } from '../watch/may-act.ts';
import { runGates } from './admit.ts';
import { unitLaunchVars } from '../runs/inputs.ts';

/** The actor of what the gates do by themselves (an expiry's cancel). */
export const GATES_ACTOR = 'gates';
/** Opens per transaction: a long queue behind many freed slots is worked off in bounded steps. */
const OPEN_BATCH = 32;
const EXPIRE_BATCH = 50;
const MAX_TIMER_MS = 2_147_483_647;

export class GateKeeper {
  private keys = new Set<string>();
  private all = false;
  private running: Promise<void> | null = null;
  private closed = false;
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  /** The database's clock minus this process's monotonic clock, as last read. */
  private dbOffsetMs: number | null = null;

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
  ) {}

  /** Something may have let attempts through: on `key`'s queue, or (no key) anywhere. */
  wake(key?: string): void {
    if (this.closed) return;
    if (key) this.keys.add(key);
    else this.all = true;
    if (!this.running)
      this.running = this.drain()
        .catch((err) => this.ctx.outage.failed('gates', err))
        .finally(() => (this.running = null));
  }

  /** This instance's commits: a freed slot, a resolved unknown deployment, a new wait with an expiry. */
  noteEvents(events: LifelineEvent[]): void {
    for (const e of events) {
      if (e.type === 'attempt_end' && typeof e.data.released_slot === 'string')
        this.wake(e.data.released_slot);
      else if (
        e.type === 'state_transition' &&
        e.data.entity === 'deployment' &&
        (e.data.trigger === 'resolved' || e.data.trigger === 'check_result')
      )
        this.wake();
      else if (e.type === 'deployment_deleted') this.wake();
      else if (e.type === 'gate_waiting' && typeof e.data.expires_at === 'string')
        this.arm(Date.parse(e.data.expires_at));
    }
  }

  /** The safety pass: every queue, and every expired wait. */
  async pass(): Promise<void> {
    this.wake();
    await this.idle();
  }

  /** Resolves once nothing is left to do (tests, close). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.idle();
  }

  private async drain(): Promise<void> {
    while (!this.closed && (this.all || this.keys.size > 0)) {
      if (!mayAct(this.ctx)) return; // the reconcile pass after re-registering looks again
      const all = this.all;
      this.all = false;
      let keys: string[];
      try {
        keys = all ? await selectWaitingKeys(this.ctx.store.db, 'concurrency') : [...this.keys];
      } catch (err) {
        // The store is down (a restart): an outage, not a crash; the next wake or pass looks again.
        this.ctx.outage.failed('gates', err);
        return;
      }
      if (all) this.keys.clear();
      for (const key of keys) {
        this.keys.delete(key);
        try {
          await this.openKey(key);
        } catch (err) {
          this.ctx.outage.failed('gates', err);
        }
      }
      if (all) {
        try {
          await this.expireDue();
        } catch (err) {
          this.ctx.outage.failed('gates', err);
        }
      }
    }
  }

  /** Opens the head of `key`'s queue while slots are free, then launches what it opened. */
  private async openKey(key: string): Promise<void> {
    for (;;) {
      const { specs, more } = await openHead(this.ctx, this.watcher, key);
      await launchAll(this.watcher, specs);
      if (!more || this.closed) return;
    }
  }

  private async expireDue(): Promise<void> {
    for (;;) {
      const due = await selectExpiredWaits(this.ctx.store.db, EXPIRE_BATCH);
      for (const r of due) await expireWait(this.ctx, r.attempt_id, r.gate as GateName);
      if (due.length < EXPIRE_BATCH) break;
    }
    const next = await selectNextExpiry(this.ctx.store.db);
    this.dbOffsetMs = next.nowMs - performance.now();
    if (next.at !== null) this.arm(Date.parse(next.at));
  }

  /** Looks again when the database's clock reaches `atMs` (early is harmless: the pass re-arms). */
  private arm(atMs: number): void {
    if (this.closed || Number.isNaN(atMs)) return;
    if (this.dbOffsetMs === null) {
      this.wake(); // a pass reads the database's clock and arms from there
      return;
    }
    if (this.timer && atMs >= this.armedAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = atMs;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, atMs - (performance.now() + this.dbOffsetMs)));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedAt = Number.POSITIVE_INFINITY;
      this.wake();
    }, delay);
    this.timer.unref();
  }
}

/**
 * One transaction on one key: the first waiting attempts are looked at again, in queue order, until one
 * still waits (first come, first served: nobody behind it passes). Returns what this instance opened.
 */
async function openHead(
  ctx: Ctx,
  watcher: Watcher,
  key: string,
): Promise<{ specs: LaunchSpec[]; more: boolean }> {
  const expected: string[] = [];
  let kept = new Set<string>();
  try {
    const res = await transact(ctx.store, ctx.bus, async (trx) => {
      const specs: LaunchSpec[] = [];
      const events: LifelineEvent[] = [];
      for (let i = 0; i < OPEN_BATCH; i++) {
        const [head] = await selectQueueHead(trx, 'concurrency', key, 1);
        if (!head) return { result: { specs, more: false }, events };
        const run = await relook(ctx, trx, head.attempt_id, events);
        if (run === 'gone') continue;
        if (run.waiting && run.stillOnKey) return { result: { specs, more: false }, events };
        if (run.spec) {
          // A cancel between this commit and the launch must ask, not cancel outright.
          watcher.expect(run.spec.attempt.id);
          expected.push(run.spec.attempt.id);
          specs.push(run.spec);
          // Every slot any plan may hold taken: nobody behind can pass, so the hand-over commits now
          // instead of looking at the next head too (the safety pass tidies what is left there).
          if ((await selectSlots(trx, key)).length >= maxLimit(ctx)) {
            return { result: { specs, more: false }, events };
          }
        }
      }
      return { result: { specs, more: true }, events };
    });
    kept = new Set(res.specs.map((s) => s.attempt.id));
    return res;
  } finally {
    // Those of a rolled-back run; the launched ones are forgotten by their launch.
    for (const id of expected) if (!kept.has(id)) watcher.forget(id);
  }
}

/** The largest `limit` of any plan: a key holding that many slots lets nobody else through. */
function maxLimit(ctx: Ctx): number {
  let max = 0;
  for (const p of Object.values(ctx.config.plans)) max = Math.max(max, p.concurrency?.limit ?? 0);
  return max;
}

type Relook = 'gone' | { waiting: boolean; stillOnKey: boolean; spec: LaunchSpec | null };

/** One waiting attempt looked at again in the caller's transaction; its events go into `events`. */
async function relook(
  ctx: Ctx,
  trx: Parameters<typeof runGates>[1],
  attemptId: string,
  events: LifelineEvent[],
): Promise<Relook> {
  const attempt = await selectAttemptById(trx, attemptId);
  const dep = attempt && (await selectDeploymentById(trx, attempt.deployment_id));
  if (!attempt || !dep || attempt.state !== 'queued' || Number(attempt.waiting ?? 0) !== 1) {
    await deleteGateRows(trx, attemptId); // a record left behind by nothing waiting
    return 'gone';
  }
  const plan = findPlan(ctx.config, dep.plan);
  const at = nowIso();
  if (!plan) {
    const end = await writeEnd(
      trx,
      attemptId,
      { kind: 'start_failed' },
      {
        rc: null,
        recovered: false,
        actor: GATES_ACTOR,
        detail: `plan ${dep.plan} is no longer configured`,
        expectWaiting: 1,
      },
    );
    if (end.ok) events.push(...end.events);
    return 'gone';
  }
  const run = await runGates(ctx, trx, { attempt, dep, plan, at }, false);
  events.push(...run.events);
  const still = run.waiting && run.events.every((e) => e.data.gate !== 'concurrency');
  if (!run.opened) return { waiting: run.waiting, stillOnKey: still, spec: null };
  const fresh = (await selectAttemptById(trx, attemptId))!;
  // A stack unit's plan is told its stack and its dependencies' outputs as they are now, at its launch.
  const stack = dep.stack_id ? await unitLaunchVars(trx, dep) : undefined;
  const spec: LaunchSpec = { attempt: fresh, deploymentName: dep.name, plan, ...(stack ? { stack } : {}) };
  return { waiting: false, stillOnKey: false, spec };
}

async function launchAll(watcher: Watcher, specs: LaunchSpec[]): Promise<void> {
  for (const spec of specs) await watcher.launch(spec);
}

/**
 * Re-looks at the gates of these waiting attempts now (a freeze lifted, an approval given) and launches
 * those that every gate lets through. For gates other than concurrency, whose openings are not a freed slot.
 */
export async function reopen(
  ctx: Ctx,
  watcher: Watcher,
  attemptIds: readonly string[],
  traceId?: string,
): Promise<number> {
  let launched = 0;
  for (const id of attemptIds) {
    let specs: LaunchSpec[] = [];
    try {
      specs = await transact(
        ctx.store,
        ctx.bus,
        async (trx) => {
          const events: LifelineEvent[] = [];
          const run = await relook(ctx, trx, id, events);
          const out = run !== 'gone' && run.spec ? [run.spec] : [];
          for (const s of out) watcher.expect(s.attempt.id);
          return { result: out, events };
        },
        { traceId },
      );
      await launchAll(watcher, specs);
      launched += specs.length;
    } finally {
      for (const s of specs) watcher.forget(s.attempt.id);
    }
  }
  return launched;
}

/** A wait that expired: the attempt is cancelled (never started) with the gate's reason. */
async function expireWait(ctx: Ctx, attemptId: string, gate: GateName): Promise<void> {
  const reason = EXPIRED_REASON[gate];
  if (!reason) return;
  await transact(ctx.store, ctx.bus, async (trx) => {
    const row = await selectAttemptById(trx, attemptId);
    if (!row || row.state !== 'queued' || Number(row.waiting ?? 0) !== 1)
      return { result: undefined, events: [] };
    const end = await writeEnd(
      trx,
      attemptId,
      { kind: 'cancelled_before_start', reason },
      { rc: null, recovered: false, actor: GATES_ACTOR, expectWaiting: 1 },
    );
    return { result: undefined, events: end.ok ? end.events : [] };
  });
}
