// Concurrency controls on writes (SPEC §6): `If-Match: "<version>"` and `Idempotency-Key`.
//
// Idempotency (every mutating method, DELETE included): the scope is the caller, the method, the route
// and the {ref}; the request hash is the SHA-256 of the canonical JSON body (object keys sorted; no body
// counts as `{}`) and of the query string when there is one. The key travels into the write as one of
// its WriteOptions and commits in the write's own transaction, so a crash leaves both or neither; the
// response (status, body, ETag/Location) then replaces it as it is sent. A refusal (4xx) wrote nothing
// and is saved as sent. A retry with the same key and body gets the first response again and runs
// nothing (a write killed before its response was sent is re-rendered from the committed entity, see
// docs/http.md); with another body, 422; while the first is still running in this process, 409. A 5xx
// saves nothing but what its write committed.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LifelineError } from '../domain/errors.ts';
import {
  IdempotentReplay,
  type IdempotencyKey,
  type IdempotentResponse,
  type LifelineApi,
  type StoredResponse,
  type WriteOptions,
} from '../lifecycle/api.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** From If-Match: `undefined` when absent; `any` for `*`. */
    ifMatch: { version: number | null } | null;
    /** This request's Idempotency-Key, carried into its write and saved with its response. */
    idempotency: IdempotencyKey | null;
  }
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const IF_MATCH = /^\s*(?:"([0-9]{1,15})"|\*)\s*$/;
const KEY = /^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$/;
const REPLAYED_HEADERS = ['content-type', 'etag', 'location', 'lifeline-next-offset'];

function malformed(field: string, reason: string): LifelineError {
  return new LifelineError('VALIDATION', `${field}: ${reason}`, [{ field, reason }], 400);
}

/**
 * The conditions of a write, as WriteOptions for the service: If-Match, the Idempotency-Key on the
 * routes whose write commits it (those that can re-render their response; the others save it after),
 * and the request id its state-change log lines name.
 */
export function writeOptions(req: FastifyRequest): WriteOptions {
  const w: WriteOptions = { traceId: req.id };
  const v = req.ifMatch?.version;
  if (typeof v === 'number') w.ifVersion = v;
  if (req.idempotency && rerenderOf(req)) w.idempotency = req.idempotency;
  return w;
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
  const params = req.params as { ref?: string; name?: string } | undefined;
  const ref = params?.ref ?? params?.name ?? '';
  return `${req.actor?.name ?? 'anonymous'} ${req.method} ${req.routeOptions.url ?? req.url} ${ref}`;
}

/**
 * The success response of each keyed write route, re-rendered from the committed entity when the
 * server died between the commit and the send. Routes not listed (check) keep the key outside the write.
 */
type Rerender = (api: LifelineApi, entity: string | null) => Promise<IdempotentResponse>;
const attempt =
  (status: number, location: boolean): Rerender =>
  async (api, id) => {
    const att = await api.getAttempt(id!);
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
    if (location) headers.location = `/v1/attempts/${att.id}`;
    return { status, body: att, headers };
  };
const deployment =
  (status: number, location: boolean): Rerender =>
  async (api, id) => {
    const dep = await api.getDeployment(id!);
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      etag: `"${dep.version}"`,
    };
    if (location) headers.location = `/v1/deployments/${dep.id}`;
    return { status, body: dep, headers };
  };
const stack =
  (status: number, location: boolean): Rerender =>
  async (api, id) => {
    const s = await api.getStack(id!);
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      etag: `"${s.version}"`,
    };
    if (location) headers.location = `/v1/stacks/${s.name}`;
    return { status, body: s, headers };
  };
const RERENDER: Record<string, Rerender> = {
  'POST /v1/deployments': deployment(201, true),
  'POST /v1/deployments/:ref/attempts': attempt(202, true),
  'POST /v1/deployments/:ref/teardown': attempt(202, true),
  'POST /v1/deployments/:ref/cancel': attempt(202, false),
  'POST /v1/deployments/:ref/resolve': deployment(200, false),
  'DELETE /v1/deployments/:ref': async () => ({ status: 204, body: null }),
  'POST /v1/stacks': stack(201, true),
  'PUT /v1/stacks/:name': stack(200, false),
  'DELETE /v1/stacks/:name': async () => ({ status: 204, body: null }),
};
const rerenderOf = (req: FastifyRequest): Rerender | undefined =>
  RERENDER[`${req.method} ${req.routeOptions.url ?? ''}`];

export function registerConditions(app: FastifyInstance, api: LifelineApi): void {
  app.decorateRequest('ifMatch', null);
  app.decorateRequest('idempotency', null);
  // Keys of requests running in this process: a twin sent meanwhile is told to wait, not run.
  const running = new Set<string>();
  const release = (req: FastifyRequest) => {
    if (req.idempotency) running.delete(`${req.idempotency.scope}\n${req.idempotency.key}`);
  };

  // A keyed write (its key passed in writeOptions) whose twin committed first, in another process,
  // throws IdempotentReplay: answer with the twin's response.
  app.addHook('onRoute', (route) => {
    if (!MUTATING.has(String(route.method).toUpperCase())) return;
    const handler = route.handler;
    route.handler = async function (this: FastifyInstance, req: FastifyRequest, reply: FastifyReply) {
      if (!req.idempotency || !rerenderOf(req)) return handler.call(this, req, reply);
      try {
        return await handler.call(this, req, reply);
      } catch (err) {
        if (!(err instanceof IdempotentReplay)) throw err;
        return replay(reply, await storedResponse(api, req, err.stored));
      }
    } as typeof handler;
  });

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
    const idem: IdempotencyKey = { scope: scopeOf(req), key, requestHash: requestHash(req.body, req.query) };
    // A key used with another request is refused here (422).
    const found = await api.idempotencyLookup(idem);
    if (found) return replay(reply, await storedResponse(api, req, found));
    if (running.has(`${idem.scope}\n${key}`)) {
      reply.header('Retry-After', '1');
      throw inFlight();
    }
    running.add(`${idem.scope}\n${key}`);
    req.idempotency = idem;
  });

  app.addHook('onRequestAbort', async (req) => release(req));
  app.addHook('onSend', async (req, reply, payload) => {
    const idem = req.idempotency;
    if (!idem) return payload;
    release(req);
    req.idempotency = null;
    // A replayed response is already stored; a 5xx keeps only what its write committed.
    if (reply.getHeader('idempotent-replayed') !== undefined || reply.statusCode >= 500) return payload;
    try {
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
      await api.idempotencySave(idem, {
        status: reply.statusCode,
        body,
        headers,
      });
    } catch (err) {
      req.log.error({ err: (err as Error).message }, 'could not record the idempotent response');
    }
    return payload;
  });
}

/** The response to replay: as sent, or re-rendered from the entity a write committed before a crash. */
async function storedResponse(
  api: LifelineApi,
  req: FastifyRequest,
  stored: StoredResponse,
): Promise<IdempotentResponse> {
  if (!('committed' in stored)) return stored;
  const rerender = rerenderOf(req);
  if (!rerender) throw inFlight();
  return rerender(api, stored.committed.entity);
}

function inFlight(): LifelineError {
  return new LifelineError(
    'INVALID_TRANSITION',
    'a request with this Idempotency-Key is still being processed; retry when it has finished',
  );
}

function replay(reply: FastifyReply, response: IdempotentResponse): FastifyReply {
  const { status, body, headers } = response;
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
