import { sql, type Kysely } from 'kysely';

// Automatic retry (SPEC §9.1). A deployment holds its one scheduled retry: which retry it is (n of
// max), when it is due, and the failed attempt whose params it runs. All null when none waits; the
// start of the retry clears them in the same compare-and-set that creates its attempt. An attempt
// records which retry it was (null for any other attempt): the count since the last success or
// operator action is read from the failed attempt itself.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('deployments').addColumn('retry_number', 'integer').execute();
  await db.schema.alterTable('deployments').addColumn('retry_of', 'integer').execute();
  await db.schema.alterTable('deployments').addColumn('retry_at', 'text').execute();
  await db.schema.alterTable('deployments').addColumn('retry_attempt_id', 'text').execute();
  await db.schema.alterTable('attempts').addColumn('retry_number', 'integer').execute();
  // The starter looks for due retries on every pass: only rows with one waiting are in this index.
  await db.schema
    .createIndex('deployments_retry_at')
    .on('deployments')
    .column('retry_at')
    .where(sql.ref('retry_at'), 'is not', null)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('deployments_retry_at').execute();
  await db.schema.alterTable('attempts').dropColumn('retry_number').execute();
  for (const c of ['retry_attempt_id', 'retry_at', 'retry_of', 'retry_number']) {
    await db.schema.alterTable('deployments').dropColumn(c).execute();
  }
}
