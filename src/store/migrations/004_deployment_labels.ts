import { type Kysely, sql } from 'kysely';

// Labels as rows beside the JSON column, so a label-filtered list is an indexed range in id order on
// both dialects. Labels never change after create, so the rows are written once, with the deployment.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('deployment_labels')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('deployment_id', 'text', (c) => c.notNull().references('deployments.id'))
    .addPrimaryKeyConstraint('deployment_labels_pk', ['key', 'value', 'deployment_id'])
    .execute();
  // Existing deployments, in pages so that a large table does not sit in memory at once.
  let after = '';
  for (;;) {
    const rows = await sql<{ id: string; labels: string }>`
      select id, labels from deployments where id > ${after} order by id limit 500`.execute(db);
    if (rows.rows.length === 0) return;
    const values = rows.rows.flatMap((r) =>
      Object.entries(JSON.parse(r.labels) as Record<string, string>).map(([key, value]) => ({
        key,
        value,
        deployment_id: r.id,
      })),
    );
    for (let i = 0; i < values.length; i += 300) {
      await db
        .insertInto('deployment_labels' as never)
        .values(values.slice(i, i + 300) as never)
        .execute();
    }
    after = rows.rows[rows.rows.length - 1].id;
  }
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
