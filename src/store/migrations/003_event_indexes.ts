import type { Kysely } from 'kysely';

// The indexes the event filters need (SPEC §3 `type=`, `deployment=`; log reads by attempt), each
// ending in seq so that a filtered page is one ordered range scan, never a scan of other events.
// (deployment_id, seq) and (attempt_id, seq) came with 001; `ifNotExists` keeps this idempotent.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('events_type_seq')
    .ifNotExists()
    .on('events')
    .columns(['type', 'seq'])
    .execute();
  await db.schema
    .createIndex('events_deployment_seq')
    .ifNotExists()
    .on('events')
    .columns(['deployment_id', 'seq'])
    .execute();
  await db.schema
    .createIndex('events_attempt_seq')
    .ifNotExists()
    .on('events')
    .columns(['attempt_id', 'seq'])
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
