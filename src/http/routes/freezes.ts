// Freezes (SPEC §13.2): list (viewer), freeze now and lift (admin).
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { actorOf } from '../auth.ts';
import { COMMON_READ_PROBLEMS, COMMON_WRITE_PROBLEMS, problems } from '../schemas.ts';

const MatchSchema = z
  .object({
    plans: z.array(z.string()).optional().describe('plan names; absent = every plan'),
    labels: z
      .record(z.string(), z.string())
      .optional()
      .describe('every label listed must be on the deployment with this value'),
    kinds: z
      .array(z.enum(['deploy', 'teardown']))
      .optional()
      .describe('attempt kinds; absent = both'),
  })
  .describe('which attempts the freeze holds; empty = every attempt')
  .meta({ id: 'FreezeMatch' });

const FreezeSchema = z
  .object({
    name: z.string(),
    source: z.enum(['config', 'api']).describe('the config file’s freezes: list, or POST /v1/freezes'),
    match: MatchSchema,
    from: z.string().nullable().describe('start (in force from the start when null)'),
    until: z.string().describe('end (exclusive)'),
    when: z.enum(['queue', 'reject']).describe('queue: matching attempts wait; reject: 409 FROZEN'),
    in_force: z.boolean().describe('in force now, on the database’s clock'),
    reason: z.string().nullable(),
    created_by: z.string().nullable(),
    created_at: z.string().nullable(),
  })
  .meta({ id: 'Freeze' });

const NewFreezeBody = z.strictObject({
  name: z.string().describe('lower-case letters, digits, _ and - (at most 63)'),
  match: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('{plans?, labels?, kinds?}; absent or empty = every attempt'),
  until: z.string().describe('ISO-8601 time with its zone, in the future'),
  reason: z.string().describe('why (at most 1000 characters); shown in GET /v1/freezes'),
  when: z.enum(['queue', 'reject']).optional().describe('default queue'),
});

const NameParams = z.object({ name: z.string().min(1).max(63).describe('the freeze name') });

export const freezeRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/v1/freezes',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listFreezes',
        tags: ['freezes'],
        summary: 'Freezes of the config file and of the API, each with whether it is in force',
        response: { 200: z.object({ items: z.array(FreezeSchema) }), ...problems(...COMMON_READ_PROBLEMS) },
      },
    },
    async () => api.listFreezes(),
  );

  app.post(
    '/v1/freezes',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'createFreeze',
        tags: ['freezes'],
        summary: 'Freeze now, until `until`: matching new attempts wait (queue) or are refused (reject)',
        body: NewFreezeBody,
        response: { 201: FreezeSchema, ...problems(...COMMON_WRITE_PROBLEMS, 409) },
      },
    },
    async (req, reply) => {
      const f = await api.createFreeze(req.body, actorOf(req));
      reply.code(201).header('Location', `/v1/freezes/${f.name}`);
      return f;
    },
  );

  app.delete(
    '/v1/freezes/:name',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'deleteFreeze',
        tags: ['freezes'],
        summary: 'Lift a freeze made through the API: the attempts it held go on, in queue order',
        params: NameParams,
        response: { 204: z.undefined().describe('Lifted'), ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      await api.deleteFreeze(req.params.name, actorOf(req));
      return reply.code(204).send();
    },
  );
};
