// What every esbuild bundle of Lifeline's code leaves out, and the line it starts with: the build's
// (scripts/build.mjs, the `lifeline` executable) and the test suite's child engines (test/helpers/crash.ts).

/**
 * Packages that find their own files relative to themselves (__dirname, worker threads, native code),
 * which a bundle would move from under them. They load from node_modules as usual.
 */
export const EXTERNAL = [
  'better-sqlite3', // native
  'pg', // loaded only for a postgres: database, by createRequire
  'pino', // transports run its files in worker threads
  'pino-pretty',
  '@fastify/static', // serve their own files
  '@fastify/swagger-ui',
  '@fastify/swagger', // reads its package.json through __dirname
];

/** Bundled CommonJS packages call require() for Node's own modules; an ES module has none. */
export const REQUIRE_BANNER =
  "import { createRequire as __lifelineRequire } from 'node:module';\nconst require = __lifelineRequire(import.meta.url);";
