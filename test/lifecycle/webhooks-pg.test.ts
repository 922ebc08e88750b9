// Two Lifeline instances on one Postgres database, one webhook: the lease row lets exactly one of
// them deliver at a time (the receiver sees at most one request in flight, ever), every event
// arrives in seq order, and when the delivering instance stops the other carries on from the cursor.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { fixturePlans, quietLogger, tempDir, waitFor, ADMIN } from '../helpers/engine.ts';
import { dbUrlFor } from '../helpers/dialect.ts';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
// One database of the run's Postgres cluster (test/setup/postgres.ts), shared by every instance here.
let dbUrl = '';
let receiver: http.Server;
let url = '';
let inFlight = 0;
let maxInFlight = 0;
const got: { seq: number; valid: boolean }[] = [];
const engines: Lifeline[] = [];

beforeAll(async () => {
  dbUrl = await dbUrlFor('postgres', tempDir('lifeline-webhooks-pg-'));
  receiver = http.createServer((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let seq = -1;
      let valid = true;
      try {
        seq = (new Webhook(SECRET).verify(body, req.headers as Record<string, string>) as { seq: number })
          .seq;
      } catch {
        valid = false;
      }
      // Slow enough that two deliverers would overlap.
      setTimeout(() => {
        got.push({ seq, valid });
        inFlight--;
        res.writeHead(200).end();
      }, 30);
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
}, 120_000);

afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  await new Promise((r) => receiver?.close(r));
});

async function instance(): Promise<Lifeline> {
  const dir = tempDir('lifeline-pg-inst-');
  const config = configFromObject(
    {
      data_dir: dir,
      db: dbUrl,
      plans: fixturePlans(),
      lease_ttl: '1s',
      webhooks: [{ name: 'hook', url, secret_env: 'WH_SECRET', events: ['deployment_created'] }],
    },
    { file: null, baseDir: dir, env: { WH_SECRET: SECRET } },
  );
  const engine = await openLifeline({ config, logger: quietLogger() });
  engines.push(engine);
  await engine.start();
  return engine;
}

describe('webhooks on Postgres with two instances', () => {
  it('one deliverer at a time, in order, and a takeover from the cursor', async () => {
    const a = await instance();
    const b = await instance();
    for (let i = 0; i < 15; i++) {
      await a.createDeployment({ name: `a-${i}`, plan: 'ok' }, ADMIN);
      await b.createDeployment({ name: `b-${i}`, plan: 'ok' }, ADMIN);
    }
    await waitFor(() => new Set(got.map((g) => g.seq)).size >= 30, 'the first 30 deliveries', 60_000);
    // Stop both in turn while more events come: whoever holds the lease, the other takes over.
    await a.close();
    for (let i = 15; i < 25; i++) await b.createDeployment({ name: `b-${i}`, plan: 'ok' }, ADMIN);
    const c = await instance();
    await b.close();
    for (let i = 0; i < 5; i++) await c.createDeployment({ name: `c-${i}`, plan: 'ok' }, ADMIN);

    const want = (await c.listEvents({ types: ['deployment_created'], limit: 1000 })).items.map((e) => e.seq);
    expect(want).toHaveLength(45);
    await waitFor(
      () => {
        const seen = new Set(got.map((g) => g.seq));
        return want.every((s) => seen.has(s));
      },
      'every deployment_created delivered',
      60_000,
    );
    expect(maxInFlight).toBe(1);
    expect(got.every((g) => g.valid)).toBe(true);
    const first: number[] = [];
    for (const g of got) if (!first.includes(g.seq)) first.push(g.seq);
    expect(first).toEqual(want);
    // The cursor moves in its own short transaction after the receiver's 2xx: wait for it, then check it.
    const status = await waitFor(async () => {
      const s = (await c.listWebhooks()).items[0];
      return s.pending === 0 ? s : null;
    }, 'the cursor past the last delivery');
    expect(status).toMatchObject({ name: 'hook', enabled: true, pending: 0 });
  }, 180_000);
});
