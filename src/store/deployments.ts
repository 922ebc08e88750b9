import type { Kysely, Transaction } from 'kysely';
import type { Database, DeploymentsTable } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** By id or by name (live deployments only). */
export async function selectDeploymentByRef(db: Db, ref: string): Promise<DeploymentsTable | undefined> {
  return db
    .selectFrom('deployments')
    .selectAll()
    .where('deleted_at', 'is', null)
    .where((eb) => eb.or([eb('id', '=', ref), eb('name', '=', ref)]))
    .executeTakeFirst();
}

export async function selectDeploymentById(db: Db, id: string): Promise<DeploymentsTable | undefined> {
  return db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function insertDeployment(trx: Transaction<Database>, row: DeploymentsTable): Promise<void> {
  await trx.insertInto('deployments').values(row).execute();
}

export interface DeploymentListQuery {
  state?: string;
  plan?: string;
  labels?: Record<string, string>;
  limit: number;
  /** id of the last item of the previous page; ids sort by creation time. */
  before?: string;
}

export async function selectDeploymentPage(db: Db, q: DeploymentListQuery): Promise<DeploymentsTable[]> {
  let query = db.selectFrom('deployments').selectAll().where('deleted_at', 'is', null);
  if (q.state) query = query.where('state', '=', q.state);
  if (q.plan) query = query.where('plan', '=', q.plan);
  if (q.before) query = query.where('id', '<', q.before);
  // Label filters run in code: labels are JSON text on both dialects. Over-fetch pages until full.
  const wanted = q.labels ? Object.entries(q.labels) : [];
  if (wanted.length === 0) return query.orderBy('id', 'desc').limit(q.limit).execute();
  const out: DeploymentsTable[] = [];
  let before = q.before;
  for (;;) {
    let page = query;
    if (before) page = page.where('id', '<', before);
    const rows = await page.orderBy('id', 'desc').limit(500).execute();
    for (const row of rows) {
      const labels = JSON.parse(row.labels) as Record<string, string>;
      if (wanted.every(([k, v]) => labels[k] === v)) out.push(row);
      if (out.length === q.limit) return out;
    }
    if (rows.length < 500) return out;
    before = rows[rows.length - 1].id;
  }
}

export async function markDeploymentDeleted(
  trx: Transaction<Database>,
  id: string,
  version: number,
  at: string,
): Promise<boolean> {
  const res = await trx
    .updateTable('deployments')
    .set({ deleted_at: at, updated_at: at })
    .where('id', '=', id)
    .where('version', '=', version)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}
