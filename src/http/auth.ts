// Bearer tokens (SPEC §6): roles viewer < operator < admin, a minimum role per route, constant-time
// comparison of SHA-256 digests, and never a token in a log line or a response.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LifelineConfig } from '../config/types.ts';
import { LifelineError } from '../domain/errors.ts';
import type { Actor, Role } from '../domain/types.ts';
import { ROLE_HEADER } from './dashboard.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Minimum role for the route; absent on public routes (health, docs, OpenAPI). */
    role?: Role;
    /** Explicitly public even under /v1 (health). */
    public?: boolean;
  }
  interface FastifyRequest {
    /** Who is calling; set by the auth hook on every non-public route. */
    actor: Actor | null;
  }
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

export function hasRole(actor: Actor, min: Role): boolean {
  return RANK[actor.role] >= RANK[min];
}

/** With no auth configured every caller is this (the server only listens on loopback then). */
export const ANONYMOUS: Actor = Object.freeze({ name: 'anonymous', role: 'admin' });

export type Authenticate = (authorization: string | undefined) => Actor | null;

/** Builds the token check. Returns null for a missing, malformed or unknown token. */
export function authenticator(config: LifelineConfig): Authenticate {
  const auth = config.auth;
  if (!auth) return () => ANONYMOUS;
  const known = auth.tokens.map((t) => ({
    actor: Object.freeze({ name: t.name, role: t.role }) as Actor,
    digest: Buffer.from(t.sha256, 'hex'),
  }));
  return (header) => {
    if (typeof header !== 'string') return null;
    const m = /^Bearer[ ]+([\x21-\x7e]{1,4096})[ ]*$/i.exec(header);
    if (!m) return null;
    const digest = createHash('sha256').update(m[1], 'utf8').digest();
    // Compare against every token, whatever matched: the time taken says nothing about which did.
    let found: Actor | null = null;
    for (const k of known) {
      const same = k.digest.length === digest.length && timingSafeEqual(k.digest, digest);
      if (same && found === null) found = k.actor;
    }
    return found;
  };
}

/** The minimum role a request needs, or null when it is public. */
export function requiredRole(req: FastifyRequest): Role | null {
  const config = req.routeOptions?.config;
  if (config?.public) return null;
  if (config?.role) return config.role;
  // Fail closed: anything under /v1 that forgot to declare a role (or matched no route) needs a viewer.
  const path = req.url.split('?')[0];
  return path === '/v1' || path.startsWith('/v1/') ? 'viewer' : null;
}

export function authRequired(): LifelineError {
  return new LifelineError(
    'AUTH_REQUIRED',
    'a valid bearer token is required (Authorization: Bearer <token>)',
  );
}

export function forbidden(need: Role, actor: Actor, what?: string): LifelineError {
  return new LifelineError(
    'FORBIDDEN',
    `${what ?? 'this request'} requires the ${need} role; token "${actor.name}" has ${actor.role}`,
  );
}

/** Installs the authentication hook (onRequest: before the body is read) and the force check. */
export function registerAuth(app: FastifyInstance, config: LifelineConfig): void {
  const authenticate = authenticator(config);
  app.decorateRequest('actor', null);
  app.addHook('onRequest', async (req, reply) => {
    const need = requiredRole(req);
    if (need === null) return;
    const actor = authenticate(req.headers.authorization);
    if (!actor) throw authRequired();
    if (!hasRole(actor, need)) {
      // A refusal is an authenticated response too: it says which role the token has (see dashboard.ts).
      reply.header(ROLE_HEADER, actor.role);
      throw forbidden(need, actor);
    }
    req.actor = actor;
  });
  // `force` (body or query) is an admin power, whatever the route's own minimum (SPEC §6).
  app.addHook('preHandler', async (req) => {
    if (req.method === 'GET' || req.method === 'HEAD' || !req.actor) return;
    const body = req.body as { force?: unknown } | undefined;
    const query = req.query as { force?: unknown } | undefined;
    const forced =
      (body !== null && typeof body === 'object' && body.force === true) || query?.force === true;
    if (forced && !hasRole(req.actor, 'admin')) throw forbidden('admin', req.actor, 'force');
  });
}

/** The actor of a request that passed the auth hook. */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.actor) throw authRequired();
  return req.actor;
}
