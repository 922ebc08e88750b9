// Concurrency controls on writes (SPEC §6): `If-Match: "<version>"` and `Idempotency-Key`.
//
// Idempotency (every mutating method, DELETE included): the scope is the caller, the method, the route
// and the {ref}; the request hash is the SHA-256 of the canonical JSON body (object keys sorted; no body
// counts as `{}`) and of the query string when there is one. The key is claimed
// before the handler runs, and the response (status, body, ETag/Location) is saved as it is sent,
// whether it succeeded or was refused (4xx). A retry with the same key and body gets that response
// again and runs nothing; with another body, 422; while the first is still running, 409. A 5xx
// releases the claim so that a retry can run.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LifelineError } from '../domain/errors.ts';
import type { LifelineApi, WriteOptions } from '../lifecycle/api.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** From If-Match: `undefined` when absent; `any` for `*`. */
    ifMatch: { version: number | null } | null;
    /** The idempotency claim this request holds, saved when its response is sent. */
    idempotency: { scope: string; key: string } | null;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const IF_MATCH = /^\s*(?:"([0-9]{1,15})"|\*)\s*$/;
const KEY = /^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$/;
const REPLAYED_HEADERS = ['content-type', 'etag', 'location', 'lifeline-next-offset'];

function malformed(field: string, reason: string): LifelineError {
  return new LifelineError('VALIDATION', `${field}: ${reason}`, [{ field, reason }], 400);
}

/** The If-Match condition of a write, as WriteOptions for the service. */
export function writeOptions(req: FastifyRequest): WriteOptions {
  const v = req.ifMatch?.version;
  return typeof v === 'number' ? { ifVersion: v } : {};
}

/** Sorted-key JSON: two bodies that mean the same hash the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The body, and the query string when there is one (DELETE's `force`): a retry must ask the same. */
function requestHash(body: unknown, query: unknown): string {
  const h = createHash('sha256').update(canonicalJson(body ?? {}));
  if (query !== null && typeof query === 'object' && Object.keys(query).length > 0) {
    h.update('\n' + canonicalJson(query));
  }
  return h.digest('hex');
}

function scopeOf(req: FastifyRequest): string {
  const ref = (req.params as { ref?: string } | undefined)?.ref ?? '';
  return `${req.actor?.name ?? 'anonymous'} ${req.method} ${req.routeOptions.url ?? req.url} ${ref}`;
}

export function registerConditions(app: FastifyInstance, api: LifelineApi): void {
  app.decorateRequest('ifMatch', null);
  app.decorateRequest('idempotency', null);

  // Runs after validation and the auth/force checks: malformed conditions are refused before any claim.
  app.addHook('preHandler', async (req, reply) => {
    if (!MUTATING.has(req.method)) return;
    const ifMatch = req.headers['if-match'];
    if (ifMatch !== undefined) {
      const m = typeof ifMatch === 'string' ? IF_MATCH.exec(ifMatch) : null;
      if (!m) throw malformed('If-Match', 'must be a quoted version such as "4" (or *)');
      req.ifMatch = { version: m[1] === undefined ? null : Number(m[1]) };
    }
    const key = req.headers['idempotency-key'];
    if (key === undefined) return;
    if (typeof key !== 'string' || !KEY.test(key)) {
      throw malformed('Idempotency-Key', 'must be 1-255 printable ASCII characters');
    }
    const scope = scopeOf(req);
    const hash = requestHash(req.body, req.query);
    for (let round = 0; round < 2; round++) {
      const found = await api.idempotencyLookup(scope, key);
      if (found) return replayOrRefuse(reply, found, hash);
      if (await api.idempotencyClaim(scope, key, hash)) {
        req.idempotency = { scope, key };
        return;
      }
      // Someone claimed it between our lookup and our claim: look again.
    }
    throw inFlight();
  });

  app.addHook('onSend', async (req, reply, payload) => {
    const claim = req.idempotency;
    if (!claim) return payload;
    req.idempotency = null;
    try {
      if (reply.statusCode >= 500) {
        await api.idempotencyRelease(claim.scope, claim.key);
        return payload;
      }
      const headers: Record<string, string> = {};
      for (const h of REPLAYED_HEADERS) {
        const v = reply.getHeader(h);
        if (v !== undefined) headers[h] = String(v);
      }
      let body: unknown = null;
      if (typeof payload === 'string' && payload.length > 0) {
        try {
          body = JSON.parse(payload);
        } catch {
          body = payload;
        }
      }
      await api.idempotencySave(claim.scope, claim.key, { status: reply.statusCode, body, headers });
    } catch (err) {
      req.log.error({ err: (err as Error).message }, 'could not record the idempotent response');
    }
    return payload;
  });
}

function inFlight(): LifelineError {
  return new LifelineError(
    'INVALID_TRANSITION',
    'a request with this Idempotency-Key is still being processed; retry when it has finished',
  );
}

async function replayOrRefuse(
  reply: FastifyReply,
  found: NonNullable<Awaited<ReturnType<LifelineApi['idempotencyLookup']>>>,
  hash: string,
): Promise<FastifyReply> {
  if (found.request_hash !== hash) {
    throw new LifelineError(
      'VALIDATION',
      'this Idempotency-Key was already used with a different request body; use a new key for a new request',
      [{ field: 'Idempotency-Key', reason: 'was used with a different request body' }],
      422,
    );
  }
  if (found.response === null) {
    reply.header('Retry-After', '1');
    throw inFlight();
  }
  const { status, body, headers } = found.response;
  reply.code(status);
  for (const [k, v] of Object.entries(headers ?? {})) reply.header(k, v);
  reply.header('Idempotent-Replayed', 'true');
  if (body === null || body === undefined) return reply.send();
  if (typeof body === 'string') return reply.send(body);
  // A replayed problem names this request's trace id: the one in its log line and X-Request-Id.
  const isProblem = (headers?.['content-type'] ?? '').startsWith('application/problem+json');
  const out =
    isProblem && typeof body === 'object' ? { ...(body as object), trace_id: reply.request.id } : body;
  return reply.send(JSON.stringify(out));
}
