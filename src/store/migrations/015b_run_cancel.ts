import type { Kysely } from 'kysely';

// A stack run's cancel (SPEC §12.4): when it was asked and by whom. Set once, with the run's
// compare-and-set; from then on the run launches nothing more and ends `cancelled`.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('runs').addColumn('cancel_requested_at', 'text').execute();
  await db.schema.alterTable('runs').addColumn('cancel_requested_by', 'text').execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
