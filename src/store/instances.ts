import type { Kysely, Transaction } from 'kysely';
import type { Database, InstancesTable } from './schema.ts';

export async function upsertInstance(db: Kysely<Database>, row: InstancesTable): Promise<void> {
  await db
    .insertInto('instances')
    .values(row)
    .onConflict((oc) =>
      oc.column('id').doUpdateSet({
        host: row.host,
        port: row.port,
        role: row.role,
        data_dir: row.data_dir,
        pid: row.pid,
        started_at: row.started_at,
        last_seen_at: row.last_seen_at,
      }),
    )
    .execute();
}

/** The lease heartbeat. */
export async function touchInstance(db: Kysely<Database>, id: string, at: string): Promise<void> {
  await db.updateTable('instances').set({ last_seen_at: at }).where('id', '=', id).execute();
}

export async function selectInstances(
  db: Kysely<Database> | Transaction<Database>,
): Promise<InstancesTable[]> {
  return db.selectFrom('instances').selectAll().orderBy('started_at', 'desc').execute();
}
