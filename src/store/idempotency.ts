import type { Kysely } from 'kysely';
import type { Database, IdempotencyKeysTable } from './schema.ts';

export async function selectIdempotencyKey(
  db: Kysely<Database>,
  scope: string,
  key: string,
): Promise<IdempotencyKeysTable | undefined> {
  return db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('scope', '=', scope)
    .where('key', '=', key)
    .executeTakeFirst();
}

/** Inserts the key unless it exists; true when this caller now holds it. */
export async function insertIdempotencyKey(
  db: Kysely<Database>,
  row: Omit<IdempotencyKeysTable, 'response'>,
): Promise<boolean> {
  const res = await db
    .insertInto('idempotency_keys')
    .values({ ...row, response: null })
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) === 1;
}

export async function updateIdempotencyResponse(
  db: Kysely<Database>,
  scope: string,
  key: string,
  response: string,
): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ response })
    .where('scope', '=', scope)
    .where('key', '=', key)
    .execute();
}

export async function deleteIdempotencyKey(db: Kysely<Database>, scope: string, key: string): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('scope', '=', scope)
    .where('key', '=', key)
    .where('response', 'is', null)
    .execute();
}
