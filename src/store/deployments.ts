// Deployment rows, and their labels as rows (deployment_labels) for the list's label filter.
import type { Kysely, Transaction } from 'kysely';
import type { Database, DeploymentsTable } from './schema.ts';
import { dbNowIso, dialectOf } from './instances.ts';
import { insertRows, runCompiled } from './compiled.ts';
import { constraintOf } from './errors.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** By id or by name (live deployments only). */
export async function selectDeploymentByRef(db: Db, ref: string): Promise<DeploymentsTable | undefined> {
  // Two indexed lookups: `id = ? OR name = ?` makes SQLite walk the whole name index. Names cannot
  // contain `_`, so an id and a name never collide.
  // Both compiled once (store/compiled.ts): every write command starts here (issue 18).
  const live = () => db.selectFrom('deployments').selectAll().where('deleted_at', 'is', null);
  if (ref.startsWith('dep_')) {
    const byId = await runCompiled(db, 'liveDeploymentById', [ref], () => live().where('id', '=', ref));
    if (byId.rows[0]) return byId.rows[0];
  }
  const byName = await runCompiled(db, 'liveDeploymentByName', [ref], () => live().where('name', '=', ref));
  return byName.rows[0];
}

export async function selectDeploymentById(db: Db, id: string): Promise<DeploymentsTable | undefined> {
  const r = await runCompiled(db, 'deploymentById', [id], () =>
    db.selectFrom('deployments').selectAll().where('id', '=', id),
  );
  return r.rows[0];
}

/**
 * Did this write fail because a live deployment already holds the name (the unique index
 * deployments_name_live)? pg names the index; SQLite names the column.
 */
export function isNameTaken(err: unknown): boolean {
  if (constraintOf(err) === 'deployments_name_live') return true;
  const e = err as { code?: unknown; message?: unknown } | null;
  return (
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' &&
    typeof e.message === 'string' &&
    e.message.includes('deployments.name')
  );
}

/** The row and its label rows (004), in the caller's transaction. */
export async function insertDeployment(trx: Transaction<Database>, row: DeploymentsTable): Promise<void> {
  await insertRows(trx, 'deployments', [row]);
  if (row.labels === '{}') return;
  const labels = Object.entries(JSON.parse(row.labels) as Record<string, string>);
  if (labels.length > 0) {
    await insertRows(
      trx,
      'deployment_labels',
      labels.map(([key, value]) => ({ key, value, deployment_id: row.id })),
    );
  }
}

/** Replaces a deployment's labels: the column and its label rows (004), in the caller's transaction. */
export async function replaceLabels(
  trx: Transaction<Database>,
  deploymentId: string,
  labels: Record<string, string>,
): Promise<void> {
  await trx.deleteFrom('deployment_labels').where('deployment_id', '=', deploymentId).execute();
  const rows = Object.entries(labels).map(([key, value]) => ({ key, value, deployment_id: deploymentId }));
  if (rows.length > 0) await insertRows(trx, 'deployment_labels', rows);
}

export interface DeploymentListQuery {
  state?: string;
  plan?: string;
  labels?: Record<string, string>;
  drift?: boolean;
  limit: number;
  /** id of the last item of the previous page; ids sort by creation time. */
  before?: string;
}

/**
 * Newest first. With labels, the walk is driven by the first label's index range (key, value, id) in
 * id order and every further label is an EXISTS probe, so a page costs about its size, not the table.
 */
export async function selectDeploymentPage(db: Db, q: DeploymentListQuery): Promise<DeploymentsTable[]> {
  const wanted = q.labels ? Object.entries(q.labels) : [];
  if (wanted.length === 0) {
    let query = db.selectFrom('deployments').selectAll().where('deleted_at', 'is', null);
    if (q.state) query = query.where('state', '=', q.state);
    if (q.plan) query = query.where('plan', '=', q.plan);
    if (q.drift !== undefined) query = query.where('drift_since', q.drift ? 'is not' : 'is', null);
    if (q.before) query = query.where('id', '<', q.before);
    return query.orderBy('id', 'desc').limit(q.limit).execute();
  }
  const [[key, value], ...more] = wanted;
  let query = db
    .selectFrom('deployment_labels as l')
    .innerJoin('deployments as d', 'd.id', 'l.deployment_id')
    .selectAll('d')
    .where('l.key', '=', key)
    .where('l.value', '=', value)
    .where('d.deleted_at', 'is', null);
  if (q.state) query = query.where('d.state', '=', q.state);
  if (q.plan) query = query.where('d.plan', '=', q.plan);
  if (q.drift !== undefined) query = query.where('d.drift_since', q.drift ? 'is not' : 'is', null);
  if (q.before) query = query.where('l.deployment_id', '<', q.before);
  for (const [k, v] of more) {
    query = query.where(({ exists, selectFrom }) =>
      exists(
        selectFrom('deployment_labels as m')
          .select('m.key')
          .where('m.key', '=', k)
          .where('m.value', '=', v)
          .whereRef('m.deployment_id', '=', 'l.deployment_id'),
      ),
    );
  }
  return query.orderBy('l.deployment_id', 'desc').limit(q.limit).execute();
}

export async function markDeploymentDeleted(
  trx: Transaction<Database>,
  id: string,
  version: number,
  at: string,
): Promise<boolean> {
  const res = await trx
    .updateTable('deployments')
    // A scheduled retry goes with it (SPEC §9.1: any operator action clears it).
    .set({
      deleted_at: at,
      updated_at: at,
      retry_number: null,
      retry_of: null,
      retry_at: null,
      retry_attempt_id: null,
      // Drift and its schedule too (SPEC §14.2): a deleted deployment is looked at no more.
      drift_since: null,
      drift_verdict: null,
      next_check_at: null,
      heal_at: null,
    })
    .where('id', '=', id)
    .where('version', '=', version)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Deployments whose scheduled retry is due on the database's clock (SPEC §9.1), earliest first. */
export async function selectDueRetries(
  db: Db,
  limit: number,
): Promise<Pick<DeploymentsTable, 'id' | 'retry_attempt_id'>[]> {
  return db
    .selectFrom('deployments')
    .select(['id', 'retry_attempt_id'])
    .where('retry_at', 'is not', null)
    .where('retry_at', '<=', dbNowIso(dialectOf(db)))
    .where('deleted_at', 'is', null)
    .orderBy('retry_at')
    .limit(limit)
    .execute();
}

/** When the next scheduled retry is due, if any waits, and the database's clock read with it (ms). */
export async function selectNextRetryAt(db: Db): Promise<{ at: string | null; nowMs: number }> {
  const row = await db
    .selectNoFrom((eb) => [
      dbNowIso(dialectOf(db)).as('now'),
      eb
        .selectFrom('deployments')
        .select('retry_at')
        .where('retry_at', 'is not', null)
        .where('deleted_at', 'is', null)
        .orderBy('retry_at')
        .limit(1)
        .as('next'),
    ])
    .executeTakeFirstOrThrow();
  return { at: row.next ?? null, nowMs: Date.parse(row.now) };
}
