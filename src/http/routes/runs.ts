// Stack runs (SPEC §12.4–12.5): deploy, teardown and cancel a stack; list its runs; read one run.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { RUN_STATES, STEP_STATES } from '../../domain/stack-run.ts';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { actorOf } from '../auth.ts';
import { writeOptions } from '../conditions.ts';
import { COMMON_READ_PROBLEMS, COMMON_WRITE_PROBLEMS, page, problems, queryInt } from '../schemas.ts';

const RunStepSchema = z
  .object({
    key: z.string(),
    index: z.number().int().nullable().describe('1…count for a unit with count > 1; null for a single unit'),
    deployment_id: z.string(),
    deployment: z.string().describe("the unit deployment's name"),
    step: z.enum(STEP_STATES),
    attempt_id: z.string().nullable().describe('the attempt this run launched on the unit'),
    detail: z.string().optional().describe('why the unit failed without an attempt (its launch was refused)'),
  })
  .meta({ id: 'RunStep' });

export const RunSchema = z
  .object({
    id: z.string().describe('run_…'),
    stack_id: z.string(),
    stack: z.string(),
    kind: z.enum(['deploy', 'teardown']),
    state: z.enum(RUN_STATES),
    version: z.number().int(),
    on_failure: z.enum(['stop', 'continue']),
    options: z.object({
      units: z.array(z.string()).optional(),
      all: z.boolean().optional(),
      force: z.boolean().optional(),
    }),
    actor: z.string(),
    reason: z.string().nullable(),
    cancel_requested_at: z.string().nullable(),
    steps: z.array(RunStepSchema).describe('every unit, in dependency order'),
    created_at: z.string(),
    updated_at: z.string(),
    ended_at: z.string().nullable(),
  })
  .meta({ id: 'Run' });

const StackParams = z.object({ name: z.string().min(1).describe('stack name (or id, stk_…)') });
const RunIdParams = z.object({ id: z.string().min(1).describe('run id (run_…)') });

const DeployBody = z
  .strictObject({
    units: z
      .array(z.string())
      .optional()
      .describe('only these unit keys, and what they come after that is not ready'),
    all: z.boolean().optional().describe('every unit, ready or not'),
    force: z
      .boolean()
      .optional()
      .describe('admin only: act on an unknown stack (forces only its unknown units)'),
  })
  .nullish();

const TeardownBody = z.strictObject({
  confirm: z.string().describe('must repeat the stack name'),
  force: z
    .boolean()
    .optional()
    .describe('admin only: act on an unknown stack (forces only its unknown units)'),
});

export const runRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.post(
    '/v1/stacks/:name/deploy',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'deployStack',
        tags: ['stacks'],
        summary: "Start a deploy run (202): the stack's units that are not ready, in dependency order",
        params: StackParams,
        body: DeployBody,
        response: { 202: RunSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const run = await api.startStackRun(
        req.params.name,
        'deploy',
        req.body ?? {},
        actorOf(req),
        writeOptions(req),
      );
      reply.code(202).header('Location', `/v1/runs/${run.id}`);
      return run;
    },
  );

  app.post(
    '/v1/stacks/:name/teardown',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'teardownStack',
        tags: ['stacks'],
        summary: 'Start a teardown run (202): every unit that stands, in reverse order',
        params: StackParams,
        body: TeardownBody,
        response: { 202: RunSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const run = await api.startStackRun(
        req.params.name,
        'teardown',
        req.body,
        actorOf(req),
        writeOptions(req),
      );
      reply.code(202).header('Location', `/v1/runs/${run.id}`);
      return run;
    },
  );

  app.post(
    '/v1/stacks/:name/cancel',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'cancelStackRun',
        tags: ['stacks'],
        summary:
          "Cancel the stack's active run (202): its running units are cancelled, nothing more launches",
        params: StackParams,
        body: z.strictObject({}).nullish(),
        response: { 202: RunSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const run = await api.cancelStackRun(req.params.name, actorOf(req), writeOptions(req));
      reply.code(202);
      return run;
    },
  );

  app.get(
    '/v1/stacks/:name/runs',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listStackRuns',
        tags: ['stacks'],
        summary: "The stack's runs, newest first",
        params: StackParams,
        querystring: z.object({
          limit: queryInt(1, 500).optional(),
          cursor: z.string().optional().describe('next_cursor of the previous page'),
        }),
        response: { 200: page(RunSchema), ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req) => api.listRuns(req.params.name, req.query),
  );

  app.get(
    '/v1/runs/:id',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getRun',
        tags: ['stacks'],
        summary: 'One run with its unit steps',
        params: RunIdParams,
        response: { 200: RunSchema, ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req) => api.getRun(req.params.id),
  );
};
