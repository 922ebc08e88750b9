// Every error leaves as application/problem+json (RFC 9457) with a stable SPEC code and the request id.
// Bad input is a 4xx; a 5xx body never carries a stack trace or an internal message.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { LifelineError, type FieldError } from '../domain/errors.ts';
import type { ErrorCode } from '../domain/types.ts';
import { storeFault } from '../lifecycle/api.ts';

/** `INTERNAL` is the one code outside SPEC §6's list: a 500 is a bug, not a stable refusal. */
export type ProblemCode = ErrorCode | 'INTERNAL';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  errors?: FieldError[];
  trace_id: string;
}

export const PROBLEM_TYPE = 'application/problem+json';

const TITLES: Record<ProblemCode, string> = {
  NOT_FOUND: 'Not found',
  VALIDATION: 'Invalid request',
  DEPLOYMENT_EXISTS: 'Deployment exists',
  PLAN_NOT_FOUND: 'Plan not found',
  ATTEMPT_IN_PROGRESS: 'Attempt in progress',
  DEPLOYMENT_UNKNOWN_STATE: 'Deployment state unknown',
  INVALID_TRANSITION: 'Invalid transition',
  ALREADY_TORN_DOWN: 'Already torn down',
  TEARDOWN_CONFIRM_MISMATCH: 'Teardown confirmation mismatch',
  NO_INFLIGHT_ATTEMPT: 'No in-flight attempt',
  ATTEMPT_TERMINAL: 'Attempt already ended',
  VERSION_MISMATCH: 'Version mismatch',
  AUTH_REQUIRED: 'Authentication required',
  FORBIDDEN: 'Forbidden',
  STORE_UNAVAILABLE: 'Store unavailable',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  NO_ROLLBACK_TARGET: 'No rollback target',
  STACK_EXISTS: 'Stack exists',
  UNIT_NOT_TORN_DOWN: 'Unit not torn down',
  STACK_RUN_IN_PROGRESS: 'Stack run in progress',
  STACK_UNKNOWN_STATE: 'Stack state unknown',
  NO_ACTIVE_RUN: 'No active run',
  CONCURRENCY_LIMIT: 'Concurrency limit reached',
  FROZEN: 'Frozen',
  FREEZE_EXISTS: 'Freeze exists',
  PLAN_STALE: 'Plan stale',
  PRUNE_LIMIT: 'Prune limit exceeded',
  INTERNAL: 'Internal server error',
};

const MAX_FIELD_ERRORS = 20;
const MAX_TEXT = 300;

function cut(s: string, max = MAX_TEXT): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

export function makeProblem(
  status: number,
  code: ProblemCode,
  detail: string,
  traceId: string,
  errors?: FieldError[],
): Problem {
  const p: Problem = {
    type: `urn:lifeline:problem:${code}`,
    title: TITLES[code],
    status,
    detail: cut(detail, 2000),
    code,
    trace_id: traceId,
  };
  if (errors && errors.length > 0) {
    p.errors = errors.slice(0, MAX_FIELD_ERRORS).map((e) => ({ field: cut(e.field), reason: cut(e.reason) }));
  }
  return p;
}

/** Sends a problem; the body is serialised here, so no route response schema applies to it. */
export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  if (p.code === 'AUTH_REQUIRED') reply.header('WWW-Authenticate', 'Bearer');
  if (p.code === 'STORE_UNAVAILABLE') reply.header('Retry-After', '5');
  return reply.code(p.status).type(PROBLEM_TYPE).send(JSON.stringify(p));
}

// ---- classification (the lifecycle's storeFault says what a database error means) ----------------

interface ValidationItem {
  instancePath?: string;
  message?: string;
  keyword?: string;
  params?: Record<string, unknown>;
}

function fieldOf(context: string | undefined, item: ValidationItem): string {
  const p = (item.instancePath ?? '').replace(/^\//, '').split('/').filter(Boolean).join('.');
  if (item.keyword === 'unrecognized_keys' && Array.isArray(item.params?.keys)) {
    const keys = item.params.keys as string[];
    return [p, keys.join(',')].filter(Boolean).join('.');
  }
  if (p) return p;
  return context === 'querystring' ? 'query' : (context ?? 'body');
}

function reasonOf(item: ValidationItem): string {
  if (item.keyword === 'unrecognized_keys') return 'is not a known field';
  return item.message ?? 'is invalid';
}

/** Maps any error thrown while handling a request to the problem it answers with. */
export function toProblem(err: unknown, req: FastifyRequest): Problem {
  const id = req.id;
  if (err instanceof LifelineError) return makeProblem(err.status, err.code, err.message, id, err.errors);

  const fe = err as FastifyError & { validation?: ValidationItem[]; validationContext?: string };
  if (Array.isArray(fe.validation)) {
    const where = fe.validationContext === 'querystring' ? 'query' : (fe.validationContext ?? 'request');
    const errors = fe.validation.map((v) => ({
      field: fieldOf(fe.validationContext, v),
      reason: reasonOf(v),
    }));
    const summary = errors
      .slice(0, 5)
      .map((e) => `${e.field}: ${e.reason}`)
      .join('; ');
    return makeProblem(422, 'VALIDATION', `invalid ${where}: ${summary}`, id, errors);
  }

  // A store this process closed answers 503 too: it is shutting down.
  if (storeFault(err) !== null) {
    return makeProblem(503, 'STORE_UNAVAILABLE', 'the database is not available; retry later', id);
  }

  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  const code = typeof fe?.code === 'string' ? fe.code : '';
  if (status === 413 || code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return makeProblem(413, 'PAYLOAD_TOO_LARGE', 'the request body is larger than the limit', id);
  }
  if (status === 415 || code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return makeProblem(415, 'VALIDATION', 'unsupported content type: send application/json', id, [
      { field: 'content-type', reason: 'must be application/json' },
    ]);
  }
  if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
    return makeProblem(400, 'VALIDATION', 'the request body is not valid JSON', id, [
      { field: 'body', reason: 'is not valid JSON' },
    ]);
  }
  if (status === 404) return makeProblem(404, 'NOT_FOUND', 'not found', id);
  if (status >= 400 && status < 500) {
    // Fastify's own 4xx errors (bad URL, bad content-length, proto poisoning…) have fixed messages.
    const detail = code.startsWith('FST_') && fe.message ? fe.message : 'the request is malformed';
    return makeProblem(status === 414 ? 414 : 400, 'VALIDATION', detail, id);
  }
  return makeProblem(500, 'INTERNAL', `internal error; quote trace_id ${id} when reporting it`, id);
}
