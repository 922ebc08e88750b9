// Apply a file (SPEC §14.1): the plan of a set of documents, and carrying it out against its digest.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { actorOf } from '../auth.ts';
import { COMMON_WRITE_PROBLEMS, problems } from '../schemas.ts';

// The documents are checked by the lifecycle, which names every bad field (`documents[2].units[0].plan`).
const PlanBody = z.object({
  source: z.string().describe('the source name: objects it applies carry the label lifeline.source=<source>'),
  documents: z
    .array(z.record(z.string(), z.unknown()))
    .describe('stack specs (with units) and standalone deployments {name, plan, params?, labels?}'),
  prune: z
    .boolean()
    .optional()
    .describe('tear down and delete what this source applied and the file no longer names'),
  max_delete: z.number().int().optional().describe('the most objects a prune may remove (default 5)'),
});
const ApplyBody = PlanBody.extend({ digest: z.string().describe('the digest of the plan reviewed') });

const FieldChangeSchema = z.object({
  path: z.string(),
  from: z.unknown().optional(),
  to: z.unknown().optional(),
});
const PlanItemSchema = z.object({
  kind: z.enum(['stack', 'deployment']),
  name: z.string(),
  action: z.enum(['create', 'update', 'deploy', 'teardown', 'delete', 'blocked', 'unchanged']),
  changes: z.array(FieldChangeSchema).describe('create/update: the fields that change, secrets masked'),
  deploy: z.array(z.string()).describe('the deployments deployed after the spec writes'),
  reason: z.string().optional().describe('blocked: why'),
  version: z.number().int().nullable().describe('the version read; null when absent'),
});
const ApplyPlanSchema = z
  .object({
    source: z.string(),
    prune: z.boolean(),
    items: z.array(PlanItemSchema),
    changes: z.boolean().describe('whether applying would change anything'),
    digest: z.string().describe('sha256 of the documents and of the version of everything read'),
  })
  .meta({ id: 'ApplyPlan' });
const ApplyResultSchema = z
  .object({
    plan: ApplyPlanSchema,
    started: z.array(
      z.object({
        kind: z.enum(['stack', 'deployment']),
        name: z.string(),
        action: PlanItemSchema.shape.action,
        run_id: z.string().optional(),
        attempt_id: z.string().optional(),
      }),
    ),
  })
  .meta({ id: 'ApplyResult' });

export const applyRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.post(
    '/v1/apply/plan',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'planApply',
        tags: ['apply'],
        summary: 'The plan of a file: what apply would do to each object, and its digest (writes nothing)',
        body: PlanBody,
        response: { 200: ApplyPlanSchema, ...problems(...COMMON_WRITE_PROBLEMS, 409) },
      },
    },
    async (req) => api.planApply(req.body),
  );

  app.post(
    '/v1/apply',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'apply',
        tags: ['apply'],
        summary:
          'Carry out a plan if its digest still holds (409 PLAN_STALE otherwise, nothing written): spec writes in one transaction, then the runs and attempts',
        body: ApplyBody,
        response: { 200: ApplyResultSchema, ...problems(...COMMON_WRITE_PROBLEMS, 409) },
      },
    },
    async (req) => api.apply(req.body, actorOf(req), { traceId: req.id }),
  );
};
