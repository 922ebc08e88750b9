// GET /metrics (SPEC §11): Prometheus text, viewer when auth is configured; and the count of open event
// streams, taken here from the requests themselves so the stream module needs no metrics code.
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { LifelineApi } from '../../lifecycle/api.ts';

export const metricsRoutes: FastifyPluginAsyncZod<{ api: LifelineApi }> = async (app, { api }) => {
  app.get(
    '/metrics',
    // Text, not JSON: kept out of the OpenAPI document (docs/operations.md lists the metrics).
    { config: { role: 'viewer' }, schema: { hide: true } },
    async (_req, reply) => {
      const { contentType, text } = await api.scrapeMetrics();
      return reply.type(contentType).send(text);
    },
  );
};

/** Counts every accepted request to an event stream route until its connection closes. */
export function countStreams(app: FastifyInstance, api: LifelineApi): void {
  app.addHook('preHandler', async (req, reply) => {
    if (!req.routeOptions.url?.endsWith('/events/stream')) return;
    // A client that left while its stream waited to be admitted: its `close` has been and gone.
    if (reply.raw.destroyed) return;
    // The response's `close` comes when the stream ends or the client goes, whichever is first.
    reply.raw.once('close', api.streamOpened());
  });
}
