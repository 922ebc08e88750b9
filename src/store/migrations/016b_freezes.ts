import { sql, type Kysely } from 'kysely';

// Freezes made through the API (SPEC §13.2; the file's `freezes:` live in the config only), and who
// approved an attempt (§13.3). A freeze row stands until `lifted_at`; its name is unique among the
// freezes that stand, so a name is free again once lifted. `mode` is the freeze's `when` (queue or
// reject). `attempts.approved_by/approved_at`: the approver, copied to an automatic retry of the
// attempt, which needs no new approval (§9.1): so a chain of retries keeps the first approval.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('freezes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('match', 'text', (c) => c.notNull())
    .addColumn('from_at', 'text', (c) => c.notNull())
    .addColumn('until_at', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('lifted_at', 'text')
    .addColumn('lifted_by', 'text')
    .execute();
  await db.schema
    .createIndex('freezes_standing_name')
    .on('freezes')
    .column('name')
    .unique()
    .where(sql.ref('lifted_at'), 'is', null)
    .execute();
  await db.schema.alterTable('attempts').addColumn('approved_by', 'text').execute();
  await db.schema.alterTable('attempts').addColumn('approved_at', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('attempts').dropColumn('approved_at').execute();
  await db.schema.alterTable('attempts').dropColumn('approved_by').execute();
  await db.schema.dropIndex('freezes_standing_name').execute();
  await db.schema.dropTable('freezes').execute();
}
