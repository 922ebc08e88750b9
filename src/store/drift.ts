// Drift rows (SPEC §14.2, migration 017): the check schedule, its claims, the drift a check found, and
// the self-heal deploys waiting. One query per function; due times are compared as ISO text on the
// database's clock.
import { sql, type Kysely, type Transaction } from 'kysely';
import { dbNowIso, dialectOf } from './instances.ts';
import type { Database, DeploymentsTable } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * What every accepted attempt clears: drift, the check schedule (the scheduler gives the deployment a
 * new slot when it is ready again) and a waiting heal. A running check's claim stays: its verdict finds
 * the version moved and is recorded as stale.
 */
export const NO_DRIFT: Pick<DeploymentsTable, 'drift_since' | 'drift_verdict' | 'next_check_at' | 'heal_at'> =
  {
    drift_since: null,
    drift_verdict: null,
    next_check_at: null,
    heal_at: null,
  };

/** Ready deployments of these plans with no check slot yet (a new one, or back from an attempt). */
export async function selectUnslotted(
  db: Db,
  plans: string[],
  limit: number,
): Promise<Pick<DeploymentsTable, 'id' | 'plan'>[]> {
  if (plans.length === 0) return [];
  return db
    .selectFrom('deployments')
    .select(['id', 'plan'])
    .where('next_check_at', 'is', null)
    .where('plan', 'in', plans)
    .where('state', '=', 'ready')
    .where('deleted_at', 'is', null)
    .limit(limit)
    .execute();
}

/** Gives an unslotted deployment its first due time (a no-op if another instance did first). */
export async function slotCheck(db: Db, id: string, at: string): Promise<void> {
  await db
    .updateTable('deployments')
    .set({ next_check_at: at })
    .where('id', '=', id)
    .where('next_check_at', 'is', null)
    .execute();
}

/** Forgets the schedule of deployments whose plan no longer has `check_every` (config changed). */
export async function unslotOtherPlans(db: Db, plans: string[]): Promise<void> {
  let q = db.updateTable('deployments').set({ next_check_at: null }).where('next_check_at', 'is not', null);
  if (plans.length > 0) q = q.where('plan', 'not in', plans);
  await q.execute();
}

/**
 * Ready deployments of these plans whose check is due at `nowIso` (the database's now), earliest first:
 * whole rows, which is what the checks need (no read per check).
 */
export async function selectDueChecks(
  db: Db,
  plans: string[],
  nowIso: string,
  limit: number,
): Promise<DeploymentsTable[]> {
  if (plans.length === 0) return [];
  return db
    .selectFrom('deployments')
    .selectAll()
    .where('state', '=', 'ready')
    .where('next_check_at', 'is not', null)
    .where('next_check_at', '<=', nowIso)
    .where((eb) => eb.or([eb('check_owner', 'is', null), eb('check_until', '<=', nowIso)]))
    .where('plan', 'in', plans)
    .where('deleted_at', 'is', null)
    .orderBy('next_check_at')
    .limit(limit)
    .execute();
}

export interface CheckClaim {
  id: string;
  /** The due time read: the claim is a compare-and-set on it, so each due check is claimed once. */
  dueAt: string;
  /** The version read: the check is of this stay in `ready` (no attempt since). */
  version: number;
  owner: string;
  epoch: number;
  /** The next due time: the deployment's next slot. */
  nextAt: string;
  /** The database's now, and when the claim expires (the check's deadline and a margin). */
  nowIso: string;
  until: string;
}

/** Claims a due check: true for exactly one claimer of a given due time. */
export async function claimCheck(db: Db, c: CheckClaim): Promise<boolean> {
  const res = await db
    .updateTable('deployments')
    .set({
      next_check_at: c.nextAt,
      check_owner: c.owner,
      check_epoch: c.epoch,
      check_version: c.version,
      check_until: c.until,
    })
    .where('id', '=', c.id)
    .where('next_check_at', '=', c.dueAt)
    // At most one check per deployment at a time: a live claim is not taken over.
    .where((eb) => eb.or([eb('check_owner', 'is', null), eb('check_until', '<=', c.nowIso)]))
    .where('state', '=', 'ready')
    .where('version', '=', c.version)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The earliest due check of these plans and the earliest heal, with the database's now (ms). */
export async function selectNextDue(
  db: Db,
  plans: string[],
): Promise<{ check: string | null; heal: string | null; nowMs: number }> {
  const row = await db
    .selectNoFrom((eb) => [
      dbNowIso(dialectOf(db)).as('now'),
      eb
        .selectFrom('deployments')
        .select('next_check_at')
        .where('state', '=', 'ready')
        .where('next_check_at', 'is not', null)
        .where((eb) =>
          eb.or([eb('check_owner', 'is', null), eb('check_until', '<=', dbNowIso(dialectOf(db)))]),
        )
        .where('plan', 'in', plans.length > 0 ? plans : [''])
        .where('deleted_at', 'is', null)
        .orderBy('next_check_at')
        .limit(1)
        .as('check'),
      eb
        .selectFrom('deployments')
        .select('heal_at')
        .where('heal_at', 'is not', null)
        .where('deleted_at', 'is', null)
        .orderBy('heal_at')
        .limit(1)
        .as('heal'),
    ])
    .executeTakeFirstOrThrow();
  return { check: row.check ?? null, heal: row.heal ?? null, nowMs: Date.parse(row.now) };
}

export interface DriftWrite {
  id: string;
  /** The deployment must still be `ready` at this version (no attempt since the check began). */
  version: number;
  /** A scheduled check's claim: the row must still name this owner and epoch (and it is released). */
  claim?: { owner: string; epoch: number };
  set: Partial<Pick<DeploymentsTable, 'drift_since' | 'drift_verdict' | 'heal_at'>>;
}

/**
 * The verdict's one guarded write: the drift columns (and the claim released) only if the deployment
 * is still `ready` at the version the check began on and, for a scheduled check, still claimed by this
 * instance under this epoch. False when the row no longer matches. The caller appends the verdict's
 * events in the same transaction.
 */
export async function writeDrift(trx: Transaction<Database>, w: DriftWrite): Promise<boolean> {
  let q = trx
    .updateTable('deployments')
    .set({
      // The version as it is: the guard below needs an UPDATE even when nothing else changes (an `up`
      // on a deployment that was not drifted), and an empty SET is not SQL.
      version: w.version,
      ...w.set,
      ...(w.claim ? { check_owner: null, check_epoch: null, check_version: null, check_until: null } : {}),
    })
    .where('id', '=', w.id)
    .where('state', '=', 'ready')
    .where('version', '=', w.version)
    .where('deleted_at', 'is', null);
  if (w.claim) {
    q = q.where('check_owner', '=', w.claim.owner).where('check_epoch', '=', w.claim.epoch);
  }
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The rows of these deployments (the verdicts of a batch of checks are written against them). */
export async function selectDeploymentsByIds(db: Db, ids: string[]): Promise<DeploymentsTable[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('deployments').selectAll().where('id', 'in', ids).execute();
}

/** Releases this instance's claim without a verdict (the check went stale or could not run). */
export async function releaseClaim(db: Db, id: string, owner: string, epoch: number): Promise<void> {
  await db
    .updateTable('deployments')
    .set({ check_owner: null, check_epoch: null, check_version: null, check_until: null })
    .where('id', '=', id)
    .where('check_owner', '=', owner)
    .where('check_epoch', '=', epoch)
    .execute();
}

/** Self-heal deploys of a deployment queued at or after `sinceIso` (the day's count, SPEC §14.2). */
export async function countHeals(
  db: Db,
  deploymentId: string,
  sinceIso: string,
  actor: string,
): Promise<number> {
  const row = await db
    .selectFrom('attempts')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('deployment_id', '=', deploymentId)
    .where('requested_by', '=', actor)
    .where('queued_at', '>=', sinceIso)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Deployments whose self-heal is due on the database's clock, earliest first. */
export async function selectDueHeals(
  db: Db,
  limit: number,
): Promise<Pick<DeploymentsTable, 'id' | 'heal_at'>[]> {
  return db
    .selectFrom('deployments')
    .select(['id', 'heal_at'])
    .where('heal_at', 'is not', null)
    .where('heal_at', '<=', dbNowIso(dialectOf(db)))
    .where('deleted_at', 'is', null)
    .orderBy('heal_at')
    .limit(limit)
    .execute();
}

/** Drops a waiting heal that can no longer start (not ready, not drifted, or the day's cap reached). */
export async function dropHeal(db: Db, id: string, healAt: string): Promise<void> {
  await db
    .updateTable('deployments')
    .set({ heal_at: null })
    .where('id', '=', id)
    .where('heal_at', '=', healAt)
    .execute();
}

/** Drifted live deployments by plan (metrics). */
export async function countDriftedByPlan(db: Db): Promise<{ plan: string; n: number }[]> {
  const rows = await db
    .selectFrom('deployments')
    .select(['plan', sql<number>`count(*)`.as('n')])
    .where('drift_since', 'is not', null)
    .where('deleted_at', 'is', null)
    .groupBy('plan')
    .execute();
  return rows.map((r) => ({ plan: r.plan, n: Number(r.n) }));
}
