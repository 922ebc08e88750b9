// The Idempotency-Key of the request being served, carried from the HTTP layer into the write's
// transaction (AsyncLocalStorage, so the lifecycle never imports http): the key row commits with the
// write, so a crash leaves either both or neither (SPEC §6, issue 9 item 9).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { StoredResponse } from './api.ts';

export interface IdempotentRequest {
  scope: string;
  key: string;
  requestHash: string;
  /** Set once the first write of the request committed with the key: later writes are its own. */
  committed: boolean;
}

const current = new AsyncLocalStorage<IdempotentRequest>();

export function withIdempotentRequest<T>(req: IdempotentRequest, fn: () => T): T {
  return current.run(req, fn);
}

export function currentIdempotentRequest(): IdempotentRequest | undefined {
  return current.getStore();
}

/** Thrown from the write when another request with the same key and body committed first. */
export class IdempotentReplay extends Error {
  constructor(readonly stored: StoredResponse) {
    super('a request with this Idempotency-Key has already committed');
    this.name = 'IdempotentReplay';
  }
}

/** The entity a command's result names: a deployment or attempt (or its id); null for none. */
export function committedEntity(result: unknown): string | null {
  if (typeof result === 'string') return result;
  if (result === null || typeof result !== 'object') return null;
  const r = result as { id?: unknown; row?: { id?: unknown } };
  if (typeof r.id === 'string') return r.id;
  if (typeof r.row?.id === 'string') return r.row.id;
  return null;
}
