import { sql, type Kysely } from 'kysely';

// Gates (SPEC §13). `attempts.waiting` is 1 while any gate holds the attempt (it stays `queued` and is
// not launched; recovery leaves it alone); `opened_at` is when its last gate opened, from which its start
// deadline counts. `attempt_gates` is the waiting record, one row per (attempt, gate), generic over the
// gate: its detail (JSON), since when, the seq of its gate_waiting event (queue order: commit order,
// whatever the instances' clocks), when it opened, and when the wait expires (a cancel, e.g.
// queue_timeout). Concurrency slots: `gate_slots` holds one row per slot held, (key, slot) unique with
// slot in 1..limit, so no two transactions can grant one slot twice; `gate_keys` is one row per key that
// every grant and queue change locks first (FOR UPDATE on Postgres; SQLite serialises writes).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('attempts')
    .addColumn('waiting', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('attempts').addColumn('opened_at', 'text').execute();
  await db.schema
    .createIndex('attempts_waiting')
    .on('attempts')
    .column('id')
    .where(sql.ref('waiting'), '=', 1)
    .execute();
  await db.schema
    .createTable('attempt_gates')
    .addColumn('attempt_id', 'text', (c) => c.notNull())
    .addColumn('gate', 'text', (c) => c.notNull())
    .addColumn('key', 'text')
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('since', 'text', (c) => c.notNull())
    .addColumn('queue_seq', 'bigint', (c) => c.notNull())
    .addColumn('opened_at', 'text')
    .addColumn('expires_at', 'text')
    .addPrimaryKeyConstraint('attempt_gates_pk', ['attempt_id', 'gate'])
    .execute();
  // The queue of a key (or of any gate): waiting rows in commit order.
  await db.schema
    .createIndex('attempt_gates_queue')
    .on('attempt_gates')
    .columns(['gate', 'key', 'queue_seq'])
    .where(sql.ref('opened_at'), 'is', null)
    .execute();
  await db.schema
    .createTable('gate_slots')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('slot', 'integer', (c) => c.notNull())
    .addColumn('attempt_id', 'text', (c) => c.notNull().unique())
    .addColumn('since', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('gate_slots_pk', ['key', 'slot'])
    .execute();
  await db.schema
    .createTable('gate_keys')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('gate_keys').execute();
  await db.schema.dropTable('gate_slots').execute();
  await db.schema.dropTable('attempt_gates').execute();
  await db.schema.dropIndex('attempts_waiting').execute();
  await db.schema.alterTable('attempts').dropColumn('opened_at').execute();
  await db.schema.alterTable('attempts').dropColumn('waiting').execute();
}
