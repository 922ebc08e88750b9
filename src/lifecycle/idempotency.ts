// Idempotency-Key records (SPEC §6), kept by store/idempotency.ts. A write's key row commits inside the
// write's own transaction (tx.ts: `refuseCommittedKey` before the write, `recordKey` after it), so a
// crash leaves both or neither; the response as sent replaces it afterwards (`save`).
import type { Kysely, Transaction } from 'kysely';
import { LifelineError } from '../domain/errors.ts';
import {
  deleteIdempotencyKey,
  insertIdempotencyResponse,
  selectIdempotencyKey,
  upsertIdempotencyResponse,
} from '../store/idempotency.ts';
import type { Database } from '../store/schema.ts';
import {
  IdempotentReplay,
  type IdempotencyKey,
  type IdempotentResponse,
  type StoredResponse,
} from './api.ts';
import { nowIso } from './ids.ts';

export class IdempotencyKeys {
  constructor(private readonly db: Kysely<Database>) {}

  /** The stored response of a key; a claim without a response (older versions) counts as none. */
  async lookup(req: IdempotencyKey): Promise<StoredResponse | null> {
    const row = await selectIdempotencyKey(this.db, req.scope, req.key);
    if (!row || row.response === null) return null;
    if (row.request_hash !== req.requestHash) throw differentBody();
    return JSON.parse(row.response) as StoredResponse;
  }

  save(req: IdempotencyKey, response: IdempotentResponse): Promise<void> {
    return upsertIdempotencyResponse(this.db, {
      scope: req.scope,
      key: req.key,
      request_hash: req.requestHash,
      response: JSON.stringify(response),
      created_at: nowIso(),
    });
  }
}

function differentBody(): LifelineError {
  return new LifelineError(
    'VALIDATION',
    'this Idempotency-Key was already used with a different request body; use a new key for a new request',
    [{ field: 'Idempotency-Key', reason: 'was used with a different request body' }],
    422,
  );
}

/** Before the write, in its transaction: a key another request committed first means replay, not run. */
export async function refuseCommittedKey(trx: Transaction<Database>, req: IdempotencyKey): Promise<void> {
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
export function recordKey(trx: Transaction<Database>, req: IdempotencyKey, result: unknown): Promise<void> {
  const stored: StoredResponse = { committed: { entity: committedEntity(result) } };
  return insertIdempotencyResponse(trx, {
    scope: req.scope,
    key: req.key,
    request_hash: req.requestHash,
    response: JSON.stringify(stored),
    created_at: nowIso(),
  });
}

/** The entity a command's result names: a deployment or attempt (or its id); null for none. */
function committedEntity(result: unknown): string | null {
  if (typeof result === 'string') return result;
  if (result === null || typeof result !== 'object') return null;
  const r = result as { id?: unknown; row?: { id?: unknown } };
  if (typeof r.id === 'string') return r.id;
  if (typeof r.row?.id === 'string') return r.row.id;
  return null;
}
