// Idempotency-Key rows: the key, the request's hash and the response (SPEC §6).
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

/** Inserts the key with its response inside a write's transaction; a duplicate is a unique violation. */
export async function insertIdempotencyResponse(
  db: Kysely<Database>,
  row: IdempotencyKeysTable & { response: string },
): Promise<void> {
  await db.insertInto('idempotency_keys').values(row).execute();
}

/** Records the response as sent, over the committed marker the write left (or as a new row). */
export async function upsertIdempotencyResponse(
  db: Kysely<Database>,
  row: IdempotencyKeysTable & { response: string },
): Promise<void> {
  await db
    .insertInto('idempotency_keys')
    .values(row)
    .onConflict((oc) => oc.columns(['scope', 'key']).doUpdateSet({ response: row.response }))
    .execute();
}

/** Drops a claim without a response (left by versions that claimed keys before the write). */
export async function deleteIdempotencyKey(db: Kysely<Database>, scope: string, key: string): Promise<void> {
  await db
    .deleteFrom('idempotency_keys')
    .where('scope', '=', scope)
    .where('key', '=', key)
    .where('response', 'is', null)
    .execute();
}
