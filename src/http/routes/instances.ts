// Instances (SPEC §6): the Lifeline servers that share this database.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { COMMON_READ_PROBLEMS, InstanceSchema, problems } from '../schemas.ts';

export const instanceRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/v1/instances',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listInstances',
        tags: ['instances'],
        summary: 'Lifeline instances and whether their lease is alive',
        response: { 200: z.object({ items: z.array(InstanceSchema) }), ...problems(...COMMON_READ_PROBLEMS) },
      },
    },
    async () => ({ items: await api.listInstances() }),
  );
};
