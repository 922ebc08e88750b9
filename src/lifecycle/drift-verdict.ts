// A check's verdict on a ready deployment (SPEC §14.2): the check_result, and drift detected or
// cleared, in one guarded write; a self-heal scheduled when the plan asks for one. Shared by the
// scheduled checks and `lifeline check`.
import type { Transaction } from 'kysely';
import type { PlanConfig } from '../config/types.ts';
import { decideDrift, decideHeal, driftOf, HEAL_WINDOW_MS, SELF_HEAL_ACTOR_NAME } from '../domain/drift.ts';
import type { CheckVerdict } from '../domain/transitions.ts';
import type { NewEvent } from '../domain/types.ts';
import { countHeals, writeDrift } from '../store/drift.ts';
import { selectDbNow } from '../store/instances.ts';
import type { Database, DeploymentsTable } from '../store/schema.ts';
import { LostRace } from '../store/transition.ts';
import type { Ctx } from './context.ts';

export interface Verdict {
  rc: number | null;
  verdict: CheckVerdict;
  actor: string;
  /** Appended first, as every check does (SPEC §9.3). */
  result: NewEvent;
}

/**
 * Records the verdict on `fresh`, a ready deployment still at the version the check began on, and
 * returns the events the caller appends in the same transaction (the check_result first). Throws
 * LostRace when the guarded write matched nothing (the transaction re-runs and finds it stale).
 */
export async function recordReadyVerdict(
  ctx: Ctx,
  trx: Transaction<Database>,
  fresh: DeploymentsTable,
  plan: PlanConfig | undefined,
  v: Verdict,
  at: string,
  claim?: { owner: string; epoch: number },
): Promise<NewEvent[]> {
  const drift = driftOf(fresh.drift_since, fresh.drift_verdict);
  const d = decideDrift('ready', drift, v.verdict, { deploymentId: fresh.id, at, actor: v.actor });
  const after = d.drift === undefined ? drift : d.drift;
  const set: { drift_since?: string | null; drift_verdict?: string | null; heal_at?: string | null } = {};
  if (d.drift !== undefined) {
    set.drift_since = d.drift?.since ?? null;
    set.drift_verdict = d.drift?.verdict ?? null;
    if (d.drift === null) set.heal_at = null; // healed by itself: no deploy needed
  }
  const events: NewEvent[] = [v.result];
  if (d.event) events.push(d.event);
  if (plan?.selfHeal && plan.retry && after && fresh.heal_at == null) {
    const nowMs = await selectDbNow(trx, ctx.store.dialect);
    const since = new Date(nowMs - HEAL_WINDOW_MS).toISOString();
    const healsToday = await countHeals(trx, fresh.id, since, SELF_HEAL_ACTOR_NAME);
    const heal = decideHeal(
      { selfHeal: true, retry: plan.retry, state: 'ready', drift: after, healPending: false, healsToday },
      Math.random(),
    );
    if (heal) {
      set.heal_at = new Date(nowMs + heal.delayMs).toISOString();
      if (d.event?.type === 'drift_detected') d.event.data.heal_at = set.heal_at;
    }
  }
  const written = await writeDrift(trx, { id: fresh.id, version: Number(fresh.version), claim, set });
  if (!written) throw new LostRace(`deployment ${fresh.id}`);
  return events;
}
