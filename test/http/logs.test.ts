// Structured server logs (docs/operations.md): one JSON line per request and one per state change,
// the state change carrying the trace_id of the request that caused it and the deployment and attempt ids.
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { tempDir, testConfig, waitFor } from '../helpers/engine.ts';

// As `lifeline serve` does: the engine and the app write to one logger.
const logs: Record<string, unknown>[] = [];
const logger = pino(
  { level: 'info' },
  new Writable({
    write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  }),
);
let engine: Lifeline;
let app: FastifyInstance;
const h = {
  logs,
  get app() {
    return app;
  },
};
beforeAll(async () => {
  const config = testConfig(tempDir('lifeline-logs-'));
  engine = await openLifeline({ config, logger });
  await engine.start();
  app = await buildApp({ api: engine, config, logger });
});
afterAll(async () => {
  await app?.close();
  await engine?.close();
});

describe('server log lines', () => {
  it('state changes name the request, the deployment and the attempt', async () => {
    const created = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      headers: { 'x-request-id': 'trace-create-1' },
      payload: { name: 'logged', plan: 'ok' },
    });
    expect(created.statusCode).toBe(201);
    const dep = JSON.parse(created.body);
    const started = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments/logged/attempts',
      headers: { 'x-request-id': 'trace-deploy-1' },
      payload: {},
    });
    expect(started.statusCode).toBe(202);
    const att = JSON.parse(started.body);

    const changes = () => h.logs.filter((l) => l.msg === 'state change');
    expect(changes()).toContainEqual(
      expect.objectContaining({
        trace_id: 'trace-create-1',
        deployment: dep.id,
        to: 'pending',
        entity: 'deployment',
      }),
    );
    expect(changes()).toContainEqual(
      expect.objectContaining({
        trace_id: 'trace-deploy-1',
        deployment: dep.id,
        attempt: att.id,
        to: 'deploying',
      }),
    );
    // The runner's own transitions (no request) are logged too, without a trace_id.
    await waitFor(() => changes().some((l) => l.attempt === att.id && l.to === 'succeeded'), 'the end');
    const end = changes().find((l) => l.attempt === att.id && l.to === 'succeeded');
    expect(end).not.toHaveProperty('trace_id');
    const request = h.logs.find((l) => l.msg === 'request' && l.trace_id === 'trace-deploy-1');
    expect(request).toMatchObject({ method: 'POST', status: 202, url: '/v1/deployments/logged/attempts' });
  });
});
