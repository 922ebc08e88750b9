// Drift over HTTP (SPEC §14.2) on SQLite and Postgres: `drift` on deployment objects, the
// `?drift=` list filter (and its bad values), `lifeline_deployments_drifted` in /metrics, and a webhook
// selecting drift_detected / drift_cleared receives exactly those.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline } from '../../src/lifecycle/engine.ts';
import { tempConfig } from '../helpers/config.ts';
import {
  DIALECTS,
  dbUrlFor,
  FIXTURES,
  fixturePlans,
  quietLogger,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';
import { expectProblem, json } from './helpers.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const plans = {
  ...fixturePlans(),
  watched: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: p('check.sh'),
    check_every: '1s',
    verify: { deploy: false, teardown: false },
  },
};

let receiver: http.Server;
let receiverUrl = '';
const received = new Map<string, { type: string; deployment_id: string; data: Record<string, unknown> }[]>();
beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const list = received.get(req.url!) ?? [];
      list.push(JSON.parse(body));
      received.set(req.url!, list);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((r) => receiver.close(r)));

describe.each(DIALECTS)('drift over HTTP on %s', (dialect) => {
  it('shows drift, filters by it, counts it, and sends its events to webhooks', async () => {
    const dir = tempDir('lifeline-drift-http-');
    const hook = `/${dialect}`;
    const raw = tempConfig(dir, {
      plans,
      dataDir: dir,
      extra: {
        reap_interval: '200ms',
        webhooks: [
          {
            name: 'drift',
            url: `${receiverUrl}${hook}`,
            secret_env: 'LIFELINE_WH_DRIFT',
            events: ['drift_detected', 'drift_cleared'],
          },
        ],
      },
    });
    const config = configFromObject(raw, {
      file: null,
      baseDir: dir,
      env: { LIFELINE_WH_DRIFT: `whsec_${randomBytes(24).toString('base64')}` },
    });
    config.db = await dbUrlFor(dialect, dir);
    const engine = await openLifeline({ config, logger: quietLogger() });
    await engine.start();
    const app = await buildApp({ api: engine, config, logger: false });
    const get = async (url: string) => app.inject({ method: 'GET', url });
    const post = async (url: string, payload?: object) => app.inject({ method: 'POST', url, payload });
    const dep = async (name: string) => json(await get(`/v1/deployments/${name}`));
    try {
      for (const [name, plan] of [
        ['d1', 'watched'],
        ['d2', 'ok'],
      ]) {
        expect((await post('/v1/deployments', { name, plan })).statusCode).toBe(201);
        expect((await post(`/v1/deployments/${name}/attempts`, {})).statusCode).toBe(202);
        await waitFor(async () => (await dep(name)).state === 'ready', `${name} ready`);
      }
      expect((await dep('d1')).drift).toBeNull();
      const ws = path.join(dir, 'workspaces', (await dep('d1')).id);
      fs.writeFileSync(path.join(ws, 'check_rc'), '3\n');
      const drifted = await waitFor(async () => (await dep('d1')).drift, 'drift');
      expect(drifted).toEqual({ since: expect.any(String), verdict: 'absent', heal_at: null });
      expect((await dep('d1')).state).toBe('ready');

      const names = async (q: string) =>
        (json(await get(`/v1/deployments${q}`)).items as { name: string }[]).map((d) => d.name);
      expect(await names('?drift=true')).toEqual(['d1']);
      expect(await names('?drift=false')).toEqual(['d2']);
      expect(await names('?drift=true&plan=ok')).toEqual([]);
      const bad = expectProblem(await get('/v1/deployments?drift=yes'), 422, 'VALIDATION');
      expect(JSON.stringify(bad)).toContain('drift');

      const metrics = parsePrometheusTextFormat((await get('/metrics')).body);
      const family = metrics.find((f) => f.name === 'lifeline_deployments_drifted')!;
      const byPlan = Object.fromEntries(
        family.metrics.map((m) => [
          (m as { labels: Record<string, string> }).labels.plan,
          Number((m as { value: string }).value),
        ]),
      );
      expect(byPlan).toMatchObject({ watched: 1, ok: 0 });

      fs.writeFileSync(path.join(ws, 'check_rc'), '0\n');
      await waitFor(async () => (await dep('d1')).drift === null, 'drift cleared');
      const delivered = await waitFor(async () => {
        const got = received.get(hook) ?? [];
        return got.length >= 2 ? got : null;
      }, 'webhook deliveries');
      expect(delivered.map((e) => e.type)).toEqual(['drift_detected', 'drift_cleared']);
      expect(delivered[0]).toMatchObject({
        deployment_id: drifted && (await dep('d1')).id,
        data: { verdict: 'absent' },
      });
      expect(await names('?drift=true')).toEqual([]);
    } finally {
      await app.close();
      await engine.close();
    }
  });

  it('documents drift and the filter in the OpenAPI document', async () => {
    const dir = tempDir('lifeline-drift-openapi-');
    const config = configFromObject(tempConfig(dir, { plans, dataDir: dir }), {
      file: null,
      baseDir: dir,
      env: {},
    });
    config.db = await dbUrlFor(dialect, dir);
    const engine = await openLifeline({ config, logger: quietLogger() });
    await engine.start();
    const app = await buildApp({ api: engine, config, logger: false });
    try {
      const doc = json(await app.inject({ method: 'GET', url: '/openapi.json' }));
      expect(doc.components.schemas.Drift.properties.verdict.enum).toEqual(['absent', 'failed']);
      expect(doc.components.schemas.Deployment.required).toContain('drift');
      const params = doc.paths['/v1/deployments'].get.parameters.map((x: { name: string }) => x.name);
      expect(params).toContain('drift');
    } finally {
      await app.close();
      await engine.close();
    }
  });
});
