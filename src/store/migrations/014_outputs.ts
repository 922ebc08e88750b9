import type { Kysely } from 'kysely';

// Outputs (SPEC §12.1): what an attempt's plan published (`{"output": {…}}` runner events, merged) and
// what its deployment's last succeeded deploy published; JSON object text, `{}` when none. Rows from
// before have none.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('attempts')
    .addColumn('outputs', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
  await db.schema
    .alterTable('deployments')
    .addColumn('outputs', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('deployments').dropColumn('outputs').execute();
  await db.schema.alterTable('attempts').dropColumn('outputs').execute();
}
