// Health (SPEC §6): liveness (public) and readiness (viewer; 503 when the store or data dir is unusable).
// Readiness answers with its own JSON body in both cases, not a problem: monitors read `checks`.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { VERSION } from '../../version.ts';
import { HealthSchema, problems, ReadinessSchema } from '../schemas.ts';

// Liveness takes no input, so its one 4xx comes from Node's HTTP parser, before any route runs (every
// route can answer it; it is documented here because nothing else can make this route fail).
const HeaderOverflowSchema = z
  .object({ error: z.string(), message: z.string(), statusCode: z.literal(431) })
  .describe('Request headers over 16 KiB: refused before routing, as plain JSON (not a problem)');

export const healthRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/v1/health',
    {
      config: { public: true },
      schema: {
        operationId: 'health',
        tags: ['health'],
        summary: 'Liveness: the process answers (public)',
        security: [],
        response: { 200: HealthSchema, 431: HeaderOverflowSchema },
      },
    },
    async () => ({ status: 'ok' as const, version: VERSION, instance: api.instanceId }),
  );

  app.get(
    '/v1/health/ready',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'ready',
        tags: ['health'],
        summary: 'Readiness: 200 when the store and data dir are usable, else 503 (same body)',
        response: { 200: ReadinessSchema, 503: ReadinessSchema, ...problems(401, 403) },
      },
    },
    async (_req, reply) => {
      let r: { ready: boolean; checks: Record<string, boolean> };
      try {
        r = await api.readiness();
      } catch {
        r = { ready: false, checks: { db: false } };
      }
      reply.code(r.ready ? 200 : 503);
      return r;
    },
  );
};
