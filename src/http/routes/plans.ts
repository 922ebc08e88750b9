// Plans (SPEC §6): what can be deployed; commands stay on the server.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { COMMON_READ_PROBLEMS, PlanSchema, problems } from '../schemas.ts';

export const planRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/v1/plans',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listPlans',
        tags: ['plans'],
        summary: 'The configured plans and their params schemas',
        response: { 200: z.object({ items: z.array(PlanSchema) }), ...problems(...COMMON_READ_PROBLEMS) },
      },
    },
    async () => ({ items: api.listPlans() }),
  );
};
