// Webhooks (SPEC §10), admin only: each configured webhook's health, and redelivery from a seq.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { LifelineApi } from '../../lifecycle/api.ts';
import { COMMON_READ_PROBLEMS, COMMON_WRITE_PROBLEMS, problems } from '../schemas.ts';

const WebhookSchema = z
  .object({
    name: z.string(),
    url: z.string().describe('any user:password in it is masked'),
    events: z.array(z.string()).describe('the event types it receives'),
    enabled: z.boolean().describe('false after the receiver answered 410 Gone (redeliver enables it again)'),
    delivered_seq: z.number().int().describe('the durable cursor: every selected event up to here got a 2xx'),
    pending: z.number().int().describe('selected events after the cursor'),
    last_status: z
      .number()
      .int()
      .nullable()
      .describe('HTTP status of the last delivery, null when none answered'),
    last_error: z.string().nullable(),
    next_attempt_at: z.string().nullable().describe('when the next retry may start (backoff), if waiting'),
  })
  .meta({ id: 'Webhook' });

const NameParams = z.object({
  name: z.string().min(1).max(63).describe('the webhook name from lifeline.yaml'),
});
const RedeliverBody = z.strictObject({
  from_seq: z
    .number()
    .int()
    .min(1)
    .describe('the first seq to deliver again (the cursor moves to from_seq - 1)'),
});

export const webhookRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/v1/webhooks',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        summary: "Configured webhooks and each one's delivery health",
        response: { 200: z.object({ items: z.array(WebhookSchema) }), ...problems(...COMMON_READ_PROBLEMS) },
      },
    },
    async () => api.listWebhooks(),
  );

  app.post(
    '/v1/webhooks/:name/redeliver',
    {
      config: { role: 'admin' },
      schema: {
        operationId: 'redeliverWebhook',
        tags: ['webhooks'],
        summary: 'Move the webhook cursor back: deliver again from from_seq',
        params: NameParams,
        body: RedeliverBody,
        response: { 200: WebhookSchema, ...problems(...COMMON_WRITE_PROBLEMS, 404) },
      },
    },
    async (req) => api.redeliverWebhook(req.params.name, req.body.from_seq),
  );
};
