// Idempotency-Key records for the HTTP conditions (http/conditions.ts), kept by store/idempotency.ts.
// A write's key row commits inside the write's own transaction (tx.ts, `recordKey`); the response as
// sent replaces it afterwards (`save`).
import type { Kysely, Transaction } from 'kysely';
import { LifelineError } from '../domain/errors.ts';
import {
  deleteIdempotencyKey,
  insertIdempotencyResponse,
  selectIdempotencyKey,
  upsertIdempotencyResponse,
} from '../store/idempotency.ts';
import type { Database } from '../store/schema.ts';
import type { IdempotentResponse, StoredResponse } from './api.ts';
import { nowIso } from './ids.ts';
import { committedEntity, IdempotentReplay, type IdempotentRequest } from './idempotent-request.ts';

export class IdempotencyKeys {
  constructor(private readonly db: Kysely<Database>) {}

  /** The stored row of a key; a claim without a response (older versions) counts as none. */
  async lookup(
    scope: string,
    key: string,
  ): Promise<{ request_hash: string; response: StoredResponse } | null> {
    const row = await selectIdempotencyKey(this.db, scope, key);
    if (!row || row.response === null) return null;
    return { request_hash: row.request_hash, response: JSON.parse(row.response) as StoredResponse };
  }

  save(scope: string, key: string, requestHash: string, response: IdempotentResponse): Promise<void> {
    return upsertIdempotencyResponse(this.db, {
      scope,
      key,
      request_hash: requestHash,
      response: JSON.stringify(response),
      created_at: nowIso(),
    });
  }
}

export function differentBody(): LifelineError {
  return new LifelineError(
    'VALIDATION',
    'this Idempotency-Key was already used with a different request body; use a new key for a new request',
    [{ field: 'Idempotency-Key', reason: 'was used with a different request body' }],
    422,
  );
}

/** Before the write, in its transaction: a key another request committed first means replay, not run. */
export async function refuseCommittedKey(trx: Transaction<Database>, req: IdempotentRequest): Promise<void> {
  const row = await selectIdempotencyKey(trx, req.scope, req.key);
  if (!row) return;
  if (row.response === null) {
    await deleteIdempotencyKey(trx, req.scope, req.key);
    return;
  }
  if (row.request_hash !== req.requestHash) throw differentBody();
  throw new IdempotentReplay(JSON.parse(row.response) as StoredResponse);
}

/** After the write, in its transaction: the key and what was committed. A concurrent twin is a unique violation. */
export function recordKey(
  trx: Transaction<Database>,
  req: IdempotentRequest,
  result: unknown,
): Promise<void> {
  const stored: StoredResponse = { committed: { entity: committedEntity(result) } };
  return insertIdempotencyResponse(trx, {
    scope: req.scope,
    key: req.key,
    request_hash: req.requestHash,
    response: JSON.stringify(stored),
    created_at: nowIso(),
  });
}
