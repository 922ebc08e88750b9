// Attempts (SPEC §6, §9.4): start a deploy attempt, cancel, list, read, phases, and read the output.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { LOG_PAGE_DEFAULT, LOG_PAGE_MAX, LOG_TAIL_MAX, type LifelineApi } from '../../lifecycle/api.ts';
import { GATE_NAMES } from '../../domain/types.ts';
import { actorOf } from '../auth.ts';
import { writeOptions } from '../conditions.ts';
import {
  AttemptIdParams,
  AttemptSchema,
  COMMON_READ_PROBLEMS,
  COMMON_WRITE_PROBLEMS,
  page,
  PhaseSchema,
  problems,
  queryInt,
  RefParams,
} from '../schemas.ts';

const StartBody = z
  .strictObject({
    params: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("merged over the deployment's params and validated against the plan's schema"),
    force: z.boolean().optional().describe('admin only: deploy over an unknown state'),
  })
  .nullish(); // Fastify hands a missing body to the validator as null

export const NEXT_OFFSET_HEADER = 'Lifeline-Next-Offset';

export const attemptRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.post(
    '/v1/deployments/:ref/attempts',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'deploy',
        tags: ['attempts'],
        summary: 'Start a deploy attempt (202, attempt queued; the deployment is deploying)',
        params: RefParams,
        body: StartBody,
        response: { 202: AttemptSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const att = await api.startDeploy(req.params.ref, req.body ?? {}, actorOf(req), writeOptions(req));
      reply.code(202).header('Location', `/v1/attempts/${att.id}`);
      return att;
    },
  );

  app.post(
    '/v1/deployments/:ref/cancel',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'cancel',
        tags: ['attempts'],
        summary:
          'Cancel the active attempt (202: cancel requested, or done if it had not started), or the retry waiting on a failed deployment (202: the failed attempt)',
        params: RefParams,
        body: z.strictObject({}).nullish(),
        response: { 202: AttemptSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const att = await api.cancel(req.params.ref, actorOf(req), writeOptions(req));
      reply.code(202);
      return att;
    },
  );

  app.get(
    '/v1/deployments/:ref/attempts',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listAttempts',
        tags: ['attempts'],
        summary: "The deployment's attempts, newest first",
        params: RefParams,
        querystring: z.object({
          limit: queryInt(1, 500).optional().describe('1-500, default 50'),
          cursor: z.string().max(200).optional(),
        }),
        response: { 200: page(AttemptSchema), ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req) => api.listAttempts(req.params.ref, req.query),
  );

  app.get(
    '/v1/attempts',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listWaitingAttempts',
        tags: ['attempts'],
        summary:
          'The attempts a gate holds (a concurrency limit, a freeze, an approval), oldest wait first, each with its gates',
        querystring: z.object({
          waiting: z
            .literal('true', {
              error: 'must be true: the attempts of a deployment are at /v1/deployments/{ref}/attempts',
            })
            .describe('must be true: lists the waiting attempts'),
          gate: z.enum(GATE_NAMES).optional().describe('only those held by this gate'),
        }),
        response: {
          200: z.object({ items: z.array(AttemptSchema) }),
          ...problems(...COMMON_READ_PROBLEMS),
        },
      },
    },
    async (req) => api.listWaitingAttempts({ gate: req.query.gate }),
  );

  app.get(
    '/v1/attempts/:id',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getAttempt',
        tags: ['attempts'],
        summary: 'Read an attempt',
        params: AttemptIdParams,
        response: { 200: AttemptSchema, ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req) => api.getAttempt(req.params.id),
  );

  app.get(
    '/v1/attempts/:id/phases',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listPhases',
        tags: ['attempts'],
        summary: "The attempt's phases, from its runner events carrying a string phase",
        params: AttemptIdParams,
        response: {
          200: z.object({ items: z.array(PhaseSchema) }),
          ...problems(...COMMON_READ_PROBLEMS, 404),
        },
      },
    },
    async (req) => api.listPhases(req.params.id),
  );

  app.get(
    '/v1/attempts/:id/log',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getAttemptLog',
        tags: ['attempts'],
        summary: `Output of the attempt (stdout and stderr interleaved) from byte offset; the next offset is in ${NEXT_OFFSET_HEADER}`,
        params: AttemptIdParams,
        querystring: z.object({
          offset: queryInt(0, Number.MAX_SAFE_INTEGER).optional().describe('byte offset, default 0'),
          limit: queryInt(1, LOG_PAGE_MAX)
            .optional()
            .describe(
              `at most this many bytes, default ${LOG_PAGE_DEFAULT}; ask again from ${NEXT_OFFSET_HEADER}`,
            ),
          tail: queryInt(1, LOG_TAIL_MAX).optional().describe('the last N lines instead of a byte range'),
        }),
        response: {
          200: {
            description: `The output as text; header ${NEXT_OFFSET_HEADER} is the offset to ask for next`,
            content: { 'text/plain': { schema: z.string() } },
          },
          ...problems(...COMMON_READ_PROBLEMS, 404),
        },
      },
    },
    async (req, reply) => {
      const { offset, limit, tail } = req.query;
      const { text, next_offset } = await api.readAttemptLog(req.params.id, offset ?? 0, { limit, tail });
      reply.header(NEXT_OFFSET_HEADER, String(next_offset)).type('text/plain; charset=utf-8');
      return text;
    },
  );
};
