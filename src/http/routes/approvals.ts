// Approvals (SPEC §13.3): answer an attempt waiting for approval.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { actorOf } from '../auth.ts';
import { AttemptIdParams, AttemptSchema, COMMON_WRITE_PROBLEMS, problems } from '../schemas.ts';

const AnswerBody = z.strictObject({
  reason: z.string().describe('why (at most 1000 characters); recorded with the answer'),
});

export const approvalRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.post(
    '/v1/attempts/:id/approve',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'approveAttempt',
        tags: ['attempts'],
        summary:
          'Approve an attempt waiting for approval (a token of at least the plan’s role, not its requester); it starts once no other gate holds it',
        params: AttemptIdParams,
        body: AnswerBody,
        response: { 200: AttemptSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req) => api.approveAttempt(req.params.id, req.body, actorOf(req), { traceId: req.id }),
  );

  app.post(
    '/v1/attempts/:id/reject',
    {
      config: { role: 'operator' },
      schema: {
        operationId: 'rejectAttempt',
        tags: ['attempts'],
        summary: 'Reject an attempt waiting for approval: it is cancelled (reason rejected)',
        params: AttemptIdParams,
        body: AnswerBody,
        response: { 200: AttemptSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404, 409) },
      },
    },
    async (req) => api.rejectAttempt(req.params.id, req.body, actorOf(req), { traceId: req.id }),
  );
};
