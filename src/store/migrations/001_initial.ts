import { type Kysely, sql } from 'kysely';

// Portable types only (text, integer, bigint): the same migration runs on SQLite and Postgres.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('deployments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('plan', 'text', (c) => c.notNull())
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('state_changed_at', 'text', (c) => c.notNull())
    .addColumn('current_attempt_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text')
    .execute();
  // Names are unique among live deployments; a deleted one frees its name, its history stays.
  await db.schema
    .createIndex('deployments_name_live')
    .on('deployments')
    .column('name')
    .unique()
    .where(sql.ref('deleted_at'), 'is', null)
    .execute();

  await db.schema
    .createTable('attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('deployment_id', 'text', (c) => c.notNull().references('deployments.id'))
    .addColumn('number', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('rc', 'integer')
    .addColumn('params', 'text', (c) => c.notNull())
    .addColumn('force', 'integer', (c) => c.notNull())
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('queued_at', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('ended_at', 'text')
    .addColumn('cancel_requested_at', 'text')
    .addColumn('timed_out_at', 'text')
    .addColumn('recovered', 'integer', (c) => c.notNull())
    .addColumn('owner', 'text')
    .addColumn('prev_state', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('pid', 'integer')
    .addColumn('process_start', 'text')
    .addColumn('boot_id', 'text')
    .addColumn('run_dir', 'text')
    .addColumn('timeout_ms', 'bigint', (c) => c.notNull())
    .addColumn('cancel_grace_ms', 'bigint', (c) => c.notNull())
    .addColumn('stdout_offset', 'bigint', (c) => c.notNull())
    .addColumn('stderr_offset', 'bigint', (c) => c.notNull())
    .addColumn('events_offset', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('attempts_deployment_number', ['deployment_id', 'number'])
    .execute();
  await db.schema.createIndex('attempts_state').on('attempts').column('state').execute();

  await db.schema
    .createTable('events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('deployment_id', 'text')
    .addColumn('attempt_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('events_deployment_seq')
    .on('events')
    .columns(['deployment_id', 'seq'])
    .execute();
  await db.schema.createIndex('events_attempt_seq').on('events').columns(['attempt_id', 'seq']).execute();

  // The seq counter: one row updated inside every appending transaction, so seq follows commit order.
  await db.schema
    .createTable('counters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'bigint', (c) => c.notNull())
    .execute();
  await db
    .insertInto('counters' as never)
    .values({ name: 'event_seq', value: 0 } as never)
    .execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('response', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
    .execute();

  await db.schema
    .createTable('instances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('host', 'text', (c) => c.notNull())
    .addColumn('port', 'integer')
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('data_dir', 'text', (c) => c.notNull())
    .addColumn('pid', 'integer', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
