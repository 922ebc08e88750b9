import type { Kysely } from 'kysely';

// Which params are secret, kept with each deployment and attempt when accepted (a JSON array of
// names), so masking never depends on the current config: a plan removed or renamed there still has
// its deployments' secrets masked. Null for rows from before (the current plan's names are used).
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('deployments').addColumn('secret_params', 'text').execute();
  await db.schema.alterTable('attempts').addColumn('secret_params', 'text').execute();
}
