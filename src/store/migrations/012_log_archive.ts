import type { Kysely } from 'kysely';

// Retention (SPEC §11). log_archive holds, per attempt, what leaves the events table once its logs are
// pruned: the log text as served (gzip), and the pruned events themselves (gzip JSON: seq, at, type, and
// a log_line's stream and offset, a runner_event's data), so phases and the seq record survive. It also
// holds the raw run-dir output past the log_line cap, taken before that run dir is removed. `retention`
// is one row: the pruner's lease (one instance prunes at a time) and `pruned_before`, the seq every
// pruned event lies below. Blobs are `bytea`: Postgres's binary type; SQLite stores a blob as is
// whatever the declared type.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('log_archive')
    .addColumn('attempt_id', 'text', (c) => c.primaryKey().references('attempts.id'))
    // Set when the attempt's log_line and runner_event events left the events table.
    .addColumn('pruned_at', 'text')
    .addColumn('log', 'bytea')
    .addColumn('log_bytes', 'bigint')
    .addColumn('events', 'bytea')
    .addColumn('event_count', 'bigint')
    // The last pruned seq of the attempt; events at or below it still in the table are being deleted
    // in later batches (an attempt with more events than one batch).
    .addColumn('last_seq', 'bigint')
    .addColumn('deleting', 'integer', (c) => c.notNull().defaultTo(0))
    // Set when the raw output past the log_line cap was copied here (its run dir may then go).
    .addColumn('rest_at', 'text')
    .addColumn('stdout_rest', 'bytea')
    .addColumn('stderr_rest', 'bytea')
    .execute();
  await db.schema.createIndex('attempts_ended_at').on('attempts').column('ended_at').execute();
  await db.schema
    .createTable('retention')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'text')
    .addColumn('pruned_before', 'bigint')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db
    .insertInto('retention' as never)
    .values({ name: 'logs', updated_at: new Date().toISOString() } as never)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('retention').execute();
  await db.schema.dropIndex('attempts_ended_at').execute();
  await db.schema.dropTable('log_archive').execute();
}
