// Deployments (SPEC §6, §9.2): create, list, read, delete, teardown, rollback, resolve, check, transitions.
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { LifelineError } from '../../domain/errors.ts';
import { DEPLOYMENT_NAME, DEPLOYMENT_STATES, type Deployment } from '../../domain/types.ts';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { actorOf } from '../auth.ts';
import { writeOptions } from '../conditions.ts';
import {
  AttemptSchema,
  CheckAcceptedSchema,
  COMMON_READ_PROBLEMS,
  COMMON_WRITE_PROBLEMS,
  DeploymentSchema,
  page,
  problems,
  queryBool,
  queryInt,
  RefParams,
  TransitionSchema,
} from '../schemas.ts';

const LABEL_RE = /^([^=]{1,63})=(.{0,256})$/s;

/** `label=k=v`, repeatable, into {k: v}. */
const labelQuery = z
  .union([z.string(), z.array(z.string()).max(64)])
  .describe('label filter k=v; repeat for several (all must match)')
  .transform((v, ctx) => {
    const out: Record<string, string> = {};
    for (const item of Array.isArray(v) ? v : [v]) {
      const m = LABEL_RE.exec(item);
      if (!m) {
        ctx.addIssue({ code: 'custom', message: 'must be key=value', input: item });
        return z.NEVER;
      }
      out[m[1]] = m[2];
    }
    return out;
  });

const CreateBody = z.strictObject({
  name: z.string().regex(DEPLOYMENT_NAME, `must match ${DEPLOYMENT_NAME.source}`),
  plan: z.string().min(1).max(200),
  params: z.record(z.string(), z.unknown()).optional(),
  labels: z.record(z.string(), z.string()).optional(),
});

const TeardownBody = z
  .strictObject({
    // Optional in the schema so that a missing confirm is the SPEC's 400 TEARDOWN_CONFIRM_MISMATCH.
    confirm: z.string().max(200).optional().describe('must repeat the deployment name'),
    force: z.boolean().optional().describe('admin only: tear down an unknown deployment'),
  })
  .nullish();

const RollbackBody = z
  .strictObject({
    to: z
      .number()
      .int()
      .min(1)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('the number of a succeeded deploy attempt; default the last one before the current attempt'),
    force: z.boolean().optional().describe('admin only: roll back over an unknown state'),
  })
  .nullish();

const ResolveBody = z.strictObject({
  state: z.enum(['ready', 'failed', 'torn_down']),
  reason: z
    .string()
    .min(1)
    .max(1000)
    .refine((s) => s.trim() !== '', 'must not be blank'),
});

/** Fastify hands a missing body to the validator as null. */
const NoBody = z.strictObject({}).nullish();

function withEtag(reply: FastifyReply, dep: Deployment): Deployment {
  reply.header('ETag', `"${dep.version}"`);
  return dep;
}

export const deploymentRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.post(
    '/v1/deployments',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'createDeployment',
        tags: ['deployments'],
        summary: 'Create a deployment (state pending)',
        body: CreateBody,
        response: { 201: DeploymentSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      if (req.ifMatch) {
        throw new LifelineError('VERSION_MISMATCH', 'If-Match on create: the deployment does not exist yet');
      }
      const dep = await api.createDeployment(req.body, actorOf(req), writeOptions(req));
      reply.code(201).header('Location', `/v1/deployments/${dep.id}`);
      return withEtag(reply, dep);
    },
  );

  app.get(
    '/v1/deployments',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listDeployments',
        tags: ['deployments'],
        summary: 'List deployments, newest first (keyset paging)',
        querystring: z.object({
          state: z.enum(DEPLOYMENT_STATES).optional(),
          plan: z.string().max(200).optional(),
          label: labelQuery.optional(),
          drift: queryBool.optional().describe('true: only drifted deployments; false: only the others'),
          limit: queryInt(1, 500).optional().describe('1-500, default 50'),
          cursor: z.string().max(200).optional().describe('next_cursor of the previous page'),
        }),
        response: { 200: page(DeploymentSchema), ...problems(...COMMON_READ_PROBLEMS) },
      },
    },
    async (req) => {
      const { state, plan, label, drift, limit, cursor } = req.query;
      return api.listDeployments({ state, plan, labels: label, drift, limit, cursor });
    },
  );

  app.get(
    '/v1/deployments/:ref',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'getDeployment',
        tags: ['deployments'],
        summary: 'Read a deployment; ETag: "<version>"',
        params: RefParams,
        response: { 200: DeploymentSchema, ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req, reply) => withEtag(reply, await api.getDeployment(req.params.ref)),
  );

  app.delete(
    '/v1/deployments/:ref',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'deleteDeployment',
        tags: ['deployments'],
        summary: 'Delete a pending or torn-down deployment (any non-active one with force=true)',
        params: RefParams,
        querystring: z.object({ force: queryBool.optional() }),
        response: { 204: z.undefined().describe('Deleted'), ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      await api.deleteDeployment(req.params.ref, { force: req.query.force }, actorOf(req), writeOptions(req));
      return reply.code(204).send();
    },
  );

  app.post(
    '/v1/deployments/:ref/teardown',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'teardown',
        tags: ['attempts'],
        summary: 'Start a teardown attempt; confirm must repeat the name',
        params: RefParams,
        body: TeardownBody,
        response: { 202: AttemptSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const att = await api.teardown(req.params.ref, req.body ?? {}, actorOf(req), writeOptions(req));
      reply.code(202).header('Location', `/v1/attempts/${att.id}`);
      return att;
    },
  );

  app.post(
    '/v1/deployments/:ref/rollback',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'rollback',
        tags: ['attempts'],
        summary:
          'Start a deploy attempt with the params of the last succeeded deploy attempt (or of attempt `to`)',
        params: RefParams,
        body: RollbackBody,
        response: { 202: AttemptSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const att = await api.rollback(req.params.ref, req.body ?? {}, actorOf(req), writeOptions(req));
      reply.code(202).header('Location', `/v1/attempts/${att.id}`);
      return att;
    },
  );

  app.post(
    '/v1/deployments/:ref/resolve',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'resolve',
        tags: ['deployments'],
        summary: 'Resolve an unknown deployment to ready, failed or torn_down',
        params: RefParams,
        body: ResolveBody,
        response: { 200: DeploymentSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) =>
      withEtag(reply, await api.resolve(req.params.ref, req.body, actorOf(req), writeOptions(req))),
  );

  app.post(
    '/v1/deployments/:ref/check',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'check',
        tags: ['deployments'],
        summary: "Run the plan's check; resolves an unknown deployment from its exit code",
        params: RefParams,
        body: NoBody,
        response: { 202: CheckAcceptedSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req, reply) => {
      const res = await api.check(req.params.ref, actorOf(req), writeOptions(req));
      reply.code(202);
      return res;
    },
  );

  app.get(
    '/v1/deployments/:ref/transitions',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listTransitions',
        tags: ['deployments'],
        summary: "The deployment's state transitions, oldest first",
        params: RefParams,
        response: {
          200: z.object({ items: z.array(TransitionSchema) }),
          ...problems(...COMMON_READ_PROBLEMS, 404),
        },
      },
    },
    async (req) => api.listTransitions(req.params.ref),
  );
};
