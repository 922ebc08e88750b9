// The dashboard (issue 4, point 2): the static files in web/ served at `/`, and the one thing the browser
// needs from the server that the API does not say: which role the caller's token has.
//
// The files are plain HTML, ES modules and CSS; there is no build step. They talk only to the public API.
//
// Role discovery: the UI hides actions the token may not take, so it has to know the role. Rather than a
// new route, every authenticated response carries `Lifeline-Role: viewer|operator|admin` (the role of the
// token that the auth hook accepted; `admin` when the server runs without auth, as every caller is then).
// The server still enforces every role; the header only decides what the UI shows. `Lifeline-Actor` (the
// token's name) lets it leave out Approve on the caller's own attempts (SPEC §13.3: no self-approval).
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';

export const ROLE_HEADER = 'Lifeline-Role';
/** The token's name (URI-encoded), so the UI can tell its own attempts: approving those is refused. */
export const ACTOR_HEADER = 'Lifeline-Actor';

/** web/ at the top of the package. */
export const WEB_ROOT = path.resolve(import.meta.dirname, '../../web');

// Everything the page loads comes from this server: no inline script, no CDN, no framing.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

async function dashboard(app: FastifyInstance): Promise<void> {
  // Runs after the auth hook (registered earlier on the same root), so req.actor is the accepted token.
  // onRequest rather than onSend so that hijacked responses (the event streams) carry it as well.
  app.addHook('onRequest', async (req, reply) => {
    if (req.actor) {
      reply.header(ROLE_HEADER, req.actor.role);
      reply.header(ACTOR_HEADER, encodeURIComponent(req.actor.name));
    }
  });

  await app.register(async (scope) => {
    // Public: the page itself asks for a token when the API answers 401.
    scope.addHook('onRoute', (route) => {
      route.config = { ...(route.config ?? {}), public: true };
    });
    await scope.register(fastifyStatic, {
      root: WEB_ROOT,
      prefix: '/',
      // One route per file (found at start-up) instead of a catch-all `/*`, which would swallow the API's
      // problem+json 404/405 answers for unknown paths.
      wildcard: false,
      index: ['index.html'],
      cacheControl: false,
      setHeaders(reply) {
        reply.headers({
          'Cache-Control': 'no-cache',
          'Content-Security-Policy': CSP,
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
        });
      },
    });
    // Browsers and tools ask for /favicon.ico whatever the page links: the same icon, not a 404.
    scope.get('/favicon.ico', { schema: { hide: true } }, (_req, reply) => reply.sendFile('favicon.svg'));
  });
}

// Not encapsulated (what fastify-plugin does): the role hook has to see every route of the app.
export const dashboardRoutes: FastifyPluginAsync = Object.assign(dashboard, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'lifeline-dashboard',
});
