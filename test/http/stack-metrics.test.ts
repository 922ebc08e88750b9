// Stacks and runs on the operator's surfaces (SPEC §12, §10, §11) on SQLite and Postgres: /metrics counts
// stacks by state and active runs by kind as a run goes, and a webhook selecting state_transition
// receives the stack's and the run's transitions (data.entity "stack" and "run") in order.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline } from '../../src/lifecycle/engine.ts';
import { tempConfig } from '../helpers/config.ts';
import { tellCtl } from '../helpers/fifo.ts';
import { DIALECTS, dbUrlFor, fixturePlans, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { json } from './helpers.ts';

interface Delivered {
  type: string;
  data: { entity?: string; id?: string; from?: string | null; to?: string };
}

let receiver: http.Server;
let receiverUrl = '';
const received = new Map<string, Delivered[]>();
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

const tell = (dir: string, depId: string, rc: number) => tellCtl(dir, depId, rc);

describe.each(DIALECTS)('stacks and runs in /metrics and webhooks on %s', (dialect) => {
  it('counts stacks by state and active runs by kind, and delivers stack and run transitions', async () => {
    const dir = tempDir('lifeline-stack-metrics-');
    const hook = `/${dialect}`;
    const raw = tempConfig(dir, {
      plans: fixturePlans(),
      dataDir: dir,
      extra: {
        webhooks: [
          {
            name: 'stacks',
            url: `${receiverUrl}${hook}`,
            secret_env: 'LIFELINE_WH_STACKS',
            events: ['state_transition'],
          },
        ],
      },
    });
    const config = configFromObject(raw, {
      file: null,
      baseDir: dir,
      env: { LIFELINE_WH_STACKS: `whsec_${randomBytes(24).toString('base64')}` },
    });
    config.db = await dbUrlFor(dialect, dir);
    const engine = await openLifeline({ config, logger: quietLogger() });
    await engine.start();
    const app = await buildApp({ api: engine, config, logger: false });
    const get = async (url: string) => app.inject({ method: 'GET', url });
    const post = async (url: string, payload: object) => app.inject({ method: 'POST', url, payload });
    /** One gauge family as {label value: number}. */
    const gauge = async (name: string, label: string) => {
      const family = parsePrometheusTextFormat((await get('/metrics')).body).find((f) => f.name === name);
      if (!family) throw new Error(`no metric ${name}`);
      return Object.fromEntries(
        family.metrics.map((m) => [
          (m as { labels: Record<string, string> }).labels[label],
          Number((m as { value: string }).value),
        ]),
      );
    };
    const zeroStacks = {
      pending: 0,
      deploying: 0,
      ready: 0,
      partial: 0,
      failed: 0,
      unknown: 0,
      tearing_down: 0,
      torn_down: 0,
    };
    try {
      expect(await gauge('lifeline_stacks', 'state')).toEqual(zeroStacks);
      expect(await gauge('lifeline_runs_active', 'kind')).toEqual({ deploy: 0, teardown: 0 });

      const spec = (name: string) => ({
        name,
        units: [
          { key: 'db', plan: 'ctl' },
          { key: 'app', plan: 'ok', after: ['db'] },
        ],
      });
      expect((await post('/v1/stacks', spec('web'))).statusCode).toBe(201);
      expect((await post('/v1/stacks', spec('idle'))).statusCode).toBe(201);
      expect(await gauge('lifeline_stacks', 'state')).toEqual({ ...zeroStacks, pending: 2 });

      const run = await post('/v1/stacks/web/deploy', {});
      expect(run.statusCode, run.body).toBe(202);
      const runId = json(run).id as string;
      const stack = json(await get('/v1/stacks/web'));
      const db = stack.units.find((u: { key: string }) => u.key === 'db').deployment_id as string;
      // The run waits on the db unit's plan: one deploy run active, the stack deploying.
      await waitFor(async () => json(await get(`/v1/runs/${runId}`)).state === 'running', 'run running');
      expect(await gauge('lifeline_stacks', 'state')).toEqual({ ...zeroStacks, pending: 1, deploying: 1 });
      expect(await gauge('lifeline_runs_active', 'kind')).toEqual({ deploy: 1, teardown: 0 });

      await tell(dir, db, 0);
      await waitFor(async () => json(await get(`/v1/runs/${runId}`)).state === 'succeeded', 'run succeeded');
      expect(await gauge('lifeline_stacks', 'state')).toEqual({ ...zeroStacks, pending: 1, ready: 1 });
      expect(await gauge('lifeline_runs_active', 'kind')).toEqual({ deploy: 0, teardown: 0 });

      // The webhook gets every state_transition; those of the stack and of its run, in seq order.
      const path_ = (entity: string, id: string) =>
        (received.get(hook) ?? [])
          .filter((e) => e.type === 'state_transition' && e.data.entity === entity && e.data.id === id)
          .map((e) => `${e.data.from ?? '-'}>${e.data.to}`);
      const stackPath = await waitFor(() => {
        const got = path_('stack', stack.id);
        return got.at(-1) === 'deploying>ready' ? got : null;
      }, 'stack transitions delivered');
      expect(stackPath).toEqual(['->pending', 'pending>deploying', 'deploying>ready']);
      const runPath = await waitFor(() => {
        const got = path_('run', runId);
        return got.at(-1)?.endsWith('>succeeded') ? got : null;
      }, 'run transitions delivered');
      expect(runPath).toEqual(['->queued', 'queued>running', 'running>succeeded']);
    } finally {
      await app.close();
      await engine.close();
    }
  });
});
