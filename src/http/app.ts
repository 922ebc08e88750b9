// The HTTP API (docs/reference/http-api.md) as a Fastify instance that is built but not listening (tests inject into it,
// server.ts listens). Routes live in routes/*.ts and stream.ts; this file wires the cross-cutting parts:
// request ids, logging, body parsing, auth, If-Match/Idempotency-Key, problem+json errors, OpenAPI.
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type pino from 'pino';
import type { LifelineConfig } from '../config/types.ts';
import { LifelineError } from '../domain/errors.ts';
import type { LifelineApi } from '../lifecycle/api.ts';
import { registerAuth } from './auth.ts';
import { clientErrorHandler, refuseConnect } from './client-error.ts';
import { registerConditions } from './conditions.ts';
import { OPENAPI_INFO, transformObject } from './openapi.ts';
import { findLossyJson, findUnstorableValue } from './json-values.ts';
import { registerOriginChecks } from './origin.ts';
import { makeProblem, sendProblem, toProblem } from './problem.ts';
import { attemptRoutes } from './routes/attempts.ts';
import { deploymentRoutes } from './routes/deployments.ts';
import { stackRoutes } from './routes/stacks.ts';
import { applyRoutes } from './routes/apply.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { instanceRoutes } from './routes/instances.ts';
import { countStreams, metricsRoutes } from './routes/metrics.ts';
import { planRoutes } from './routes/plans.ts';
import { runRoutes } from './routes/runs.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { freezeRoutes } from './routes/freezes.ts';
import { approvalRoutes } from './routes/approvals.ts';
import { streamRoutes } from './stream.ts';
import { dashboardRoutes } from './dashboard.ts';

/** The service plus the one lookup the stream needs to resolve `{ref}` (deleted deployments included). */
export type AppApi = LifelineApi & { deploymentIdFor(ref: string): Promise<string> };

export interface BuildAppOptions {
  api: AppApi;
  config: LifelineConfig;
  /** A pino logger (request lines carry `trace_id`), or false for none. */
  logger?: pino.Logger | false;
  /** Largest accepted request body in bytes; default 1 MiB. */
  bodyLimit?: number;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Where the Authorization header could end up in a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'request.headers.authorization',
  'headers.authorization',
  'authorization',
];

const SANE_REQUEST_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

function genReqId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}

export const MAX_JSON_DEPTH = 32;

/** Nesting depth of a parsed JSON value, without recursion (the value may be arbitrarily deep). */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/**
 * The request URL as logged: values of query parameters the route does not declare are redacted, so a
 * token someone put in the query string (`?access_token=…`) never reaches a log line.
 */
export function loggedUrl(req: FastifyRequest): string {
  const url = req.url.length > 512 ? `${req.url.slice(0, 512)}…` : req.url;
  const q = url.indexOf('?');
  if (q < 0) return url;
  const declared = declaredQueryKeys(req);
  const parts = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      const key = pair.slice(0, eq);
      let name = key;
      try {
        name = decodeURIComponent(key.replace(/\+/g, ' '));
      } catch {
        // an undecodable name is not a declared one
      }
      return declared.has(name) ? pair : `${key}=[redacted]`;
    });
  return `${url.slice(0, q)}?${parts.join('&')}`;
}

/** The query parameter names the matched route's schema declares (zod object or JSON schema). */
function declaredQueryKeys(req: FastifyRequest): Set<string> {
  const schema = req.routeOptions?.schema?.querystring as
    { shape?: Record<string, unknown>; properties?: Record<string, unknown> } | undefined;
  return new Set(Object.keys(schema?.shape ?? schema?.properties ?? {}));
}

/** A route pattern such as /v1/deployments/:ref as a regex over concrete paths (for 405 vs 404). */
function patternOf(url: string): RegExp {
  const body = url
    .split('/')
    .map((seg) => {
      if (seg.startsWith(':')) return '[^/]+';
      if (seg === '*') return '.*';
      return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${body}/?$`);
}

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const { api, config } = opts;
  const logger = opts.logger
    ? opts.logger.child({}, { redact: { paths: REDACT_PATHS, censor: '[redacted]' } })
    : undefined;

  const app = Fastify({
    ...(logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger: false }),
    // One line per request, written below with the outcome; the request id is logged as trace_id.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'trace_id' }),
    genReqId,
    bodyLimit: opts.bodyLimit ?? DEFAULT_BODY_LIMIT,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1000 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Headers and body within a minute (Fastify's default is no limit: a client that stops mid-body
    // would hold its request open for good). A stream's response is not bounded by it, only its request.
    requestTimeout: 60_000,
    // What Node's HTTP parser refuses (431, a duplicate Content-Length, an unknown method) is a problem too.
    clientErrorHandler,
    // Node would answer a missing Host with a bare 400; the Host check (origin.ts) refuses it as a problem.
    http: { requireHostHeader: false },
    // Errors from the router itself (an undecodable URL) are problems too.
    frameworkErrors: (err, req, reply) => {
      reply.header('X-Request-Id', req.id);
      const p =
        err.code === 'FST_ERR_BAD_URL'
          ? makeProblem(400, 'VALIDATION', 'the URL is not valid (bad percent-encoding?)', req.id)
          : toProblem(err, req);
      sendProblem(reply, p);
    },
  });

  app.server.on('connect', refuseConnect);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  // ---- request ids and the request log line ---------------------------------------------------
  app.addHook('onRequest', async (req, reply) => {
    reply.header('X-Request-Id', req.id);
    // No stored id, name or filter holds a NUL, and Postgres refuses one in text: a 422, not a 500.
    if (req.url.includes('%00')) {
      throw new LifelineError(
        'VALIDATION',
        'the URL must not contain a NUL character (%00)',
        [{ field: 'url', reason: 'contains %00' }],
        400,
      ); // a URL that cannot name anything, like one that does not decode
    }
  });
  // Before anything else reads the request: a foreign Host or a cross-origin write is refused.
  registerOriginChecks(app, config);
  app.addHook('onResponse', async (req, reply) => {
    const line = {
      method: req.method,
      url: loggedUrl(req),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      actor: req.actor?.name,
    };
    if (reply.statusCode >= 500) req.log.error(line, 'request failed');
    else req.log.info(line, 'request');
  });

  // ---- bodies: JSON only; an empty body is "no body" --------------------------------------------
  const strictJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, raw, done) => {
    let text: string;
    try {
      text = utf8.decode(raw as Buffer);
    } catch {
      // Decoding would put U+FFFD where the bytes were: what is stored would not be what was sent.
      return done(
        new LifelineError('VALIDATION', 'the body is not valid UTF-8', [
          { field: 'body', reason: 'is not valid UTF-8' },
        ]),
        undefined,
      );
    }
    if (text.trim() === '') return done(null, undefined);
    strictJson(req, text, (err, value) => {
      if (err) return done(err, undefined);
      // Deep nesting would overflow the stack of whatever walks the value later (hashing, storing).
      if (depthOf(value) > MAX_JSON_DEPTH) {
        return done(
          new LifelineError('VALIDATION', `the body nests deeper than ${MAX_JSON_DEPTH} levels`, [
            { field: 'body', reason: `nests deeper than ${MAX_JSON_DEPTH} levels` },
          ]),
          undefined,
        );
      }
      // Duplicate keys, rounded integers, Infinity, lone surrogates and NUL: stored other than sent.
      const bad = findLossyJson(text) ?? findUnstorableValue(value);
      if (bad) {
        return done(
          new LifelineError('VALIDATION', `invalid body: ${bad.field} ${bad.reason}`, [bad]),
          undefined,
        );
      }
      done(null, value);
    });
  });

  // ---- errors -----------------------------------------------------------------------------------
  app.setErrorHandler((err, req, reply) => {
    const p = toProblem(err, req);
    if (p.status >= 500) req.log.error({ err }, 'request error');
    return sendProblem(reply, p);
  });

  const routes: { method: string; pattern: RegExp }[] = [];
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) routes.push({ method: m, pattern: patternOf(route.url) });
  });
  app.setNotFoundHandler((req: FastifyRequest, reply) => {
    const path = req.url.split('?')[0];
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    const shown = path.length > 200 ? `${path.slice(0, 200)}…` : path;
    if (allowed.length > 0) {
      reply.header('Allow', allowed.join(', '));
      return sendProblem(
        reply,
        makeProblem(
          405,
          'NOT_FOUND',
          `${req.method} is not allowed on ${shown}; use ${allowed.join(', ')}`,
          req.id,
        ),
      );
    }
    return sendProblem(
      reply,
      makeProblem(404, 'NOT_FOUND', `no such resource: ${req.method} ${shown}`, req.id),
    );
  });

  registerAuth(app, config);
  registerConditions(app, api);

  // ---- OpenAPI and docs -------------------------------------------------------------------------
  await app.register(swagger, { openapi: OPENAPI_INFO, transform: jsonSchemaTransform, transformObject });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  // ---- routes -----------------------------------------------------------------------------------
  countStreams(app, api);
  await app.register(healthRoutes, { api });
  await app.register(metricsRoutes, { api });
  await app.register(webhookRoutes, { api });
  await app.register(freezeRoutes, { api });
  await app.register(approvalRoutes, { api });
  await app.register(planRoutes, { api });
  await app.register(deploymentRoutes, { api });
  await app.register(stackRoutes, { api });
  await app.register(applyRoutes, { api });
  await app.register(attemptRoutes, { api });
  await app.register(eventRoutes, { api });
  await app.register(runRoutes, { api });
  await app.register(instanceRoutes, { api });
  await app.register(streamRoutes, { api });
  await app.register(dashboardRoutes); // web/ at `/`, and the Lifeline-Role header

  await app.ready();
  return app;
}
