import { sql, type Kysely } from 'kysely';

// Stacks and runs (SPEC §12). A stack holds its spec (JSON text), its derived state and version, and
// the run that is active on it (null between runs). Like a deployment, a deleted stack keeps its row
// (and history) and frees its name. A unit is an ordinary deployment that names its stack, key and
// index (null for a standalone deployment). Events of units and of the stack itself carry `stack_id`;
// the index holds only those rows, so standalone events cost it nothing.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('stacks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('spec', 'text', (c) => c.notNull())
    .addColumn('labels', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('active_run_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text')
    .execute();
  await db.schema
    .createIndex('stacks_name_live')
    .on('stacks')
    .column('name')
    .unique()
    .where(sql.ref('deleted_at'), 'is', null)
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('stack_id', 'text', (c) => c.notNull().references('stacks.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    // [{key, index, deployment_id, step, attempt_id}]
    .addColumn('steps', 'text', (c) => c.notNull())
    .addColumn('options', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .execute();
  // A stack's runs, newest first (ids sort by creation).
  await db.schema.createIndex('runs_stack_id').on('runs').columns(['stack_id', 'id']).execute();

  await db.schema.alterTable('deployments').addColumn('stack_id', 'text').execute();
  await db.schema.alterTable('deployments').addColumn('unit_key', 'text').execute();
  await db.schema.alterTable('deployments').addColumn('unit_index', 'integer').execute();
  await db.schema
    .createIndex('deployments_stack_id')
    .on('deployments')
    .column('stack_id')
    .where(sql.ref('stack_id'), 'is not', null)
    .execute();

  await db.schema.alterTable('events').addColumn('stack_id', 'text').execute();
  await db.schema
    .createIndex('events_stack_seq')
    .on('events')
    .columns(['stack_id', 'seq'])
    .where(sql.ref('stack_id'), 'is not', null)
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are forward-only');
}
