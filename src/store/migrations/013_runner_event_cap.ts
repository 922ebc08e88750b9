import type { Kysely } from 'kysely';

// runner_event events are capped per attempt like log_line ones (`log_limit`, counted apart): how many
// are stored and the bytes of their data, and 1 once the cap was reached (the rest stay in the run
// dir's events file). Rows from before count from 0.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('attempt_logs')
    .addColumn('event_count', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('attempt_logs')
    .addColumn('event_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('attempt_logs')
    .addColumn('events_capped', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
