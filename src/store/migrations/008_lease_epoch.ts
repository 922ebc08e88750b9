import type { Kysely } from 'kysely';

// Fencing (docs/scaling.md, "Leases and fencing"): each registration of an instance gets a new lease
// epoch, and an attempt records the epoch of the registration that owns it. An owner's writes about an
// attempt match owner and epoch, so a stale registration (one whose lease lapsed) cannot write.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('instances')
    .addColumn('epoch', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema
    .alterTable('attempts')
    .addColumn('owner_epoch', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('attempts').dropColumn('owner_epoch').execute();
  await db.schema.alterTable('instances').dropColumn('epoch').execute();
}
