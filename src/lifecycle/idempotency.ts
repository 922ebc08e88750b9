// Idempotency-Key records for the HTTP conditions (http/conditions.ts), kept by store/idempotency.ts.
import type { Kysely } from 'kysely';
import {
  deleteIdempotencyKey,
  insertIdempotencyKey,
  selectIdempotencyKey,
  updateIdempotencyResponse,
} from '../store/idempotency.ts';
import type { Database } from '../store/schema.ts';
import type { IdempotentResponse } from './api.ts';
import { clockNow, nowIso } from './ids.ts';

const STALE_CLAIM_MS = 5 * 60_000;

export class IdempotencyKeys {
  constructor(private readonly db: Kysely<Database>) {}

  async lookup(
    scope: string,
    key: string,
  ): Promise<{ request_hash: string; response: IdempotentResponse | null } | null> {
    const row = await selectIdempotencyKey(this.db, scope, key);
    if (!row) return null;
    return {
      request_hash: row.request_hash,
      response: row.response === null ? null : (JSON.parse(row.response) as IdempotentResponse),
    };
  }

  async claim(scope: string, key: string, requestHash: string): Promise<boolean> {
    const row = { scope, key, request_hash: requestHash, created_at: nowIso() };
    if (await insertIdempotencyKey(this.db, row)) return true;
    // A claim whose holder died before saving a response would block the key forever: after a while
    // with no response it is released (the write it guarded either committed or never happened).
    const held = await selectIdempotencyKey(this.db, scope, key);
    if (held && held.response === null && Date.parse(held.created_at) < clockNow() - STALE_CLAIM_MS) {
      await deleteIdempotencyKey(this.db, scope, key);
      return insertIdempotencyKey(this.db, row);
    }
    return false;
  }

  save(scope: string, key: string, response: IdempotentResponse): Promise<void> {
    return updateIdempotencyResponse(this.db, scope, key, JSON.stringify(response));
  }

  release(scope: string, key: string): Promise<void> {
    return deleteIdempotencyKey(this.db, scope, key);
  }
}
