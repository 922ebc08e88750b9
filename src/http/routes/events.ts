// Reading events (SPEC §3): pages of the global log, or of one deployment. The streams live in stream.ts.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { EVENT_TYPES, type EventType } from '../../domain/types.ts';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { COMMON_READ_PROBLEMS, EventSchema, problems, queryInt, RefParams } from '../schemas.ts';

/** `type=a,b` and/or `type=a&type=b`, each one of EVENT_TYPES. */
export const eventTypesQuery = z
  .union([z.string(), z.array(z.string()).max(32)])
  .describe(`comma-separated event types: ${EVENT_TYPES.join(', ')}`)
  .transform((v, ctx) => {
    const out: EventType[] = [];
    for (const t of (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(','))) {
      const name = t.trim();
      if (name === '') continue;
      if (!(EVENT_TYPES as readonly string[]).includes(name)) {
        ctx.addIssue({ code: 'custom', message: `must be one of ${EVENT_TYPES.join(', ')}`, input: name });
        return z.NEVER;
      }
      if (!out.includes(name as EventType)) out.push(name as EventType);
    }
    return out.length > 0 ? out : undefined;
  });

const pageQuery = {
  after: queryInt(0, Number.MAX_SAFE_INTEGER).optional().describe('return events with seq > after'),
  limit: queryInt(1, 1000).optional().describe('1-1000, default 100'),
  type: eventTypesQuery.optional(),
};

const EventPage = z.object({
  items: z.array(EventSchema),
  next_after: z.number().int().describe('pass as `after` to read on'),
  logs_pruned_before: z
    .number()
    .int()
    .nullable()
    .describe(
      'retention: seqs below this may be missing, their log_line and runner_event events pruned (output readable at GET /v1/attempts/{id}/log); null when no log was ever pruned',
    ),
});

export const eventRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/v1/events',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listEvents',
        tags: ['events'],
        summary: 'Events in seq order, after a seq',
        querystring: z.object({
          ...pageQuery,
          deployment: z.string().min(1).max(200).optional().describe('deployment id or name'),
          stack: z
            .string()
            .min(1)
            .max(200)
            .optional()
            .describe("stack id or name: the stack's own events and its units'"),
        }),
        response: { 200: EventPage, ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req) => {
      const { after, limit, type, deployment, stack } = req.query;
      return api.listEvents({ after, limit, types: type, deployment, stack });
    },
  );

  app.get(
    '/v1/deployments/:ref/events',
    {
      config: { role: 'viewer' },
      schema: {
        operationId: 'listDeploymentEvents',
        tags: ['events'],
        summary: "One deployment's events in seq order",
        params: RefParams,
        querystring: z.object(pageQuery),
        response: { 200: EventPage, ...problems(...COMMON_READ_PROBLEMS, 404) },
      },
    },
    async (req) => {
      const { after, limit, type } = req.query;
      return api.listEvents({ after, limit, types: type, deployment: req.params.ref });
    },
  );
};
