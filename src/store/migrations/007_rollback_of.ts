import type { Kysely } from 'kysely';

// A rollback attempt (SPEC §9.2) names the succeeded deploy attempt whose params it runs.
// Nullable integer: every other attempt, and all existing ones, have none.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('attempts').addColumn('rollback_of', 'integer').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('attempts').dropColumn('rollback_of').execute();
}
