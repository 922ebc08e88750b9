import type { Kysely } from 'kysely';

// Why an attempt ended when no exit code says it (e.g. its program is missing): shown by the API,
// `lifeline show` and the dashboard. Nullable text: existing attempts have none.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('attempts').addColumn('detail', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('attempts').dropColumn('detail').execute();
}
