import type { Kysely, Transaction } from 'kysely';
import { runCompiled } from './compiled.ts';
import type { AttemptsTable, Database } from './schema.ts';
import type { Fence } from './transition.ts';

type Db = Kysely<Database> | Transaction<Database>;

// The reads of every attempt's path run as statements compiled once (store/compiled.ts, issue 18).
export async function selectAttemptById(db: Db, id: string): Promise<AttemptsTable | undefined> {
  const r = await runCompiled(db, 'attemptById', [id], () =>
    db.selectFrom('attempts').selectAll().where('id', '=', id),
  );
  return r.rows[0];
}

export async function selectAttemptsByIds(db: Db, ids: string[]): Promise<AttemptsTable[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('attempts').selectAll().where('id', 'in', ids).execute();
}

export async function selectLastAttemptNumber(db: Db, deploymentId: string): Promise<number> {
  const r = await runCompiled(db, 'lastAttemptNumber', [deploymentId], () =>
    db
      .selectFrom('attempts')
      .select((eb) => eb.fn.max('number').as('n'))
      .where('deployment_id', '=', deploymentId),
  );
  return Number(r.rows[0]?.n ?? 0);
}

export async function selectAttemptPage(
  db: Db,
  deploymentId: string,
  limit: number,
  beforeNumber?: number,
): Promise<AttemptsTable[]> {
  let q = db.selectFrom('attempts').selectAll().where('deployment_id', '=', deploymentId);
  if (beforeNumber !== undefined) q = q.where('number', '<', beforeNumber);
  return q.orderBy('number', 'desc').limit(limit).execute();
}

/**
 * Attempts in these states that no gate holds (SPEC §13): a waiting attempt is nobody's to watch or
 * recover, so the reconcile pass does not read it (its work does not grow with the queues).
 */
export async function selectUnheldInStates(db: Db, states: string[]): Promise<AttemptsTable[]> {
  return db
    .selectFrom('attempts')
    .selectAll()
    .where('state', 'in', states)
    .where('waiting', '=', 0)
    .orderBy('id')
    .execute();
}

/** `unknown` attempts still current on an `unknown` deployment: the ones an operator waits on. */
export async function selectCurrentUnknown(db: Db): Promise<AttemptsTable[]> {
  return db
    .selectFrom('attempts')
    .innerJoin('deployments', 'deployments.current_attempt_id', 'attempts.id')
    .selectAll('attempts')
    .where('attempts.state', '=', 'unknown')
    .where('deployments.state', '=', 'unknown')
    .orderBy('attempts.id')
    .execute();
}

/** The next page of `unknown` attempts with a run dir, by id after `after` (a cursor that wraps). */
export async function selectUnknownPage(db: Db, after: string, limit: number): Promise<AttemptsTable[]> {
  return db
    .selectFrom('attempts')
    .selectAll()
    .where('state', '=', 'unknown')
    .where('run_dir', 'is not', null)
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** Output cursors move only forward, together with the events they produced (same transaction). */
export async function advanceCursors(
  trx: Transaction<Database>,
  id: string,
  from: Pick<AttemptsTable, 'stdout_offset' | 'stderr_offset' | 'events_offset'>,
  to: Pick<AttemptsTable, 'stdout_offset' | 'stderr_offset' | 'events_offset'>,
  fence?: Fence,
): Promise<boolean> {
  let q = trx
    .updateTable('attempts')
    .set(to)
    .where('id', '=', id)
    .where('stdout_offset', '=', from.stdout_offset)
    .where('stderr_offset', '=', from.stderr_offset)
    .where('events_offset', '=', from.events_offset);
  if (fence) q = q.where('owner', '=', fence.owner).where('owner_epoch', '=', fence.epoch);
  const res = await q.executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/**
 * Takes over an attempt (from an owner that is gone, or from this instance's previous registration);
 * loses if someone else took it first. The new owner's epoch fences the old owner's writes from now on.
 */
export async function claimAttempt(db: Db, id: string, from: Fence, to: Fence): Promise<boolean> {
  const res = await db
    .updateTable('attempts')
    .set({ owner: to.owner, owner_epoch: to.epoch })
    .where('id', '=', id)
    .where((eb) => (from.owner === null ? eb('owner', 'is', null) : eb('owner', '=', from.owner)))
    .where('owner_epoch', '=', from.epoch)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** A succeeded deploy attempt of the deployment: number `to`, or the last one before `before`. */
export async function selectRollbackTarget(
  db: Db,
  deploymentId: string,
  target: { to: number } | { before: number },
): Promise<AttemptsTable | undefined> {
  let q = db
    .selectFrom('attempts')
    .selectAll()
    .where('deployment_id', '=', deploymentId)
    .where('kind', '=', 'deploy')
    .where('state', '=', 'succeeded');
  q = 'to' in target ? q.where('number', '=', target.to) : q.where('number', '<', target.before);
  return q.orderBy('number', 'desc').limit(1).executeTakeFirst();
}
