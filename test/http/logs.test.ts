// Structured server logs (docs/operations.md): one JSON line per request and one per state change,
// the state change carrying the trace_id of the request that caused it and the deployment and attempt ids.
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { AUTH_CONFIG, bearer } from './helpers.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { FIXTURES, fixturePlans, tempDir, testConfig, waitFor } from '../helpers/engine.ts';

const admin = bearer('admin');

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
  const appr = {
    deploy: [path.join(FIXTURES, 'ok.sh')],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    approval: { deploy: true },
  };
  const config = testConfig(tempDir('lifeline-logs-'), {
    plans: { ...fixturePlans(), appr },
    ...AUTH_CONFIG,
  });
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
      headers: { ...admin, 'x-request-id': 'trace-create-1' },
      payload: { name: 'logged', plan: 'ok' },
    });
    expect(created.statusCode).toBe(201);
    const dep = JSON.parse(created.body);
    const started = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments/logged/attempts',
      headers: { ...admin, 'x-request-id': 'trace-deploy-1' },
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

  it("an answer to an approval names its request too (it takes no conditions, only the request's id)", async () => {
    const made = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      headers: admin,
      payload: { name: 'asked', plan: 'appr' },
    });
    expect(made.statusCode, made.body).toBe(201);
    const att = JSON.parse(
      (await h.app.inject({ method: 'POST', url: '/v1/deployments/asked/attempts', headers: admin })).body,
    );
    await waitFor(async () => {
      const a = JSON.parse((await h.app.inject({ url: `/v1/attempts/${att.id}`, headers: admin })).body);
      return a.waiting?.length > 0;
    }, 'waiting for approval');
    const res = await h.app.inject({
      method: 'POST',
      url: `/v1/attempts/${att.id}/reject`,
      headers: { ...admin, 'x-request-id': 'trace-reject-1' },
      payload: { reason: 'not today' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(h.logs.filter((l) => l.msg === 'state change')).toContainEqual(
      expect.objectContaining({ trace_id: 'trace-reject-1', attempt: att.id, to: 'cancelled' }),
    );
  });
});
