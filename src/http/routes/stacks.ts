// Stacks (SPEC §12.5): create, list, read, replace the spec (If-Match), delete.
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { LifelineError } from '../../domain/errors.ts';
import type { Stack } from '../../domain/stack-types.ts';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { actorOf } from '../auth.ts';
import { writeOptions } from '../conditions.ts';
import {
  COMMON_READ_PROBLEMS,
  COMMON_WRITE_PROBLEMS,
  page,
  problems,
  queryBool,
  queryInt,
  StackSchema,
} from '../schemas.ts';

// The spec is checked by the lifecycle, which names every bad field as `units[2].after[0]`; here it is
// any JSON object (its shape is the StackSpec schema, documented on the responses).
const SpecBody = z
  .record(z.string(), z.unknown())
  .describe(
    'a stack spec: {name, on_failure?: stop|continue, labels?, units: [{key, plan, params?, count?, after?}]} (see StackSpec)',
  );

const NameParams = z.object({ name: z.string().min(1).max(200).describe('stack name (or id, stk_…)') });

function withEtag(reply: FastifyReply, s: Stack): Stack {
  reply.header('ETag', `"${s.version}"`);
  return s;
}

export const stackRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.post(
    '/v1/stacks',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'createStack',
        tags: ['stacks'],
        summary: 'Create a stack and all its unit deployments (pending), in one transaction',
        body: SpecBody,
        response: { 201: StackSchema, ...problems(...COMMON_WRITE_PROBLEMS, 409) },
      },
    },
    async (req, reply) => {
      if (req.ifMatch)
        throw new LifelineError('VERSION_MISMATCH', 'If-Match on create: the stack does not exist yet');
      const s = await api.createStack(req.body, actorOf(req), writeOptions(req));
      reply.code(201).header('Location', `/v1/stacks/${s.name}`);
      return withEtag(reply, s);
    },
  );

  app.get(
    '/v1/stacks',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listStacks',
        tags: ['stacks'],
        summary: 'List stacks, newest first (keyset paging)',
        querystring: z.object({
          limit: queryInt(1, 500).optional().describe('1-500, default 50'),
          cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
        }),
        response: { 200: page(StackSchema), ...problems(...COMMON_READ_PROBLEMS) },
      },
    },
    async (req) => api.listStacks(req.query),
  );

  app.get(
    '/v1/stacks/:name',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getStack',
        tags: ['stacks'],
        summary: 'Read a stack: spec, state, units in dependency order, active run; ETag: "<version>"',
        params: NameParams,
        response: { 200: StackSchema, ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req, reply) => withEtag(reply, await api.getStack(req.params.name)),
  );

  app.put(
    '/v1/stacks/:name',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'updateStack',
        tags: ['stacks'],
        summary: 'Replace the spec: new units pending, removed units (pending/torn_down only) deleted',
        params: NameParams,
        body: SpecBody,
        response: { 200: StackSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) =>
      withEtag(reply, await api.updateStack(req.params.name, req.body, actorOf(req), writeOptions(req))),
  );

  app.delete(
    '/v1/stacks/:name',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'deleteStack',
        tags: ['stacks'],
        summary: 'Delete a stack and its units (every unit pending/torn_down, or force=true)',
        params: NameParams,
        querystring: z.object({ force: queryBool.optional() }),
        response: { 204: z.undefined().describe('Deleted'), ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      await api.deleteStack(req.params.name, { force: req.query.force }, actorOf(req), writeOptions(req));
      return reply.code(204).send();
    },
  );
};
