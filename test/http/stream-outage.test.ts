// Event streams through a database outage (issue 7): on a Postgres cluster of this file's own (the run's
// shared one cannot be stopped under other files), `pg_ctl stop -m fast` under open streams. The streams
// stay open with their keepalives flowing, a stream opened during the outage waits too, and once the
// database is back both deliver every event once, in order, with no gap. Postgres only by nature.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { sendProblem, toProblem } from '../../src/http/problem.ts';
import { streamRoutes } from '../../src/http/stream.ts';
import { OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';
import { ensureDatabase, PgCluster } from '../helpers/pg.ts';
import { contiguous, openSse } from '../helpers/sse.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
let cluster: PgCluster | null = null;
afterAll(async () => {
  await cluster?.destroy();
});

async function serveStreams(engine: Lifeline): Promise<string> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.setErrorHandler((err, req, reply) => sendProblem(reply, toProblem(err, req)));
  await app.register(streamRoutes, { api: engine, keepaliveMs: 200, pollMs: 500 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

describe('event streams through a database restart (postgres)', () => {
  it('stay open with keepalives while Postgres is down and resume with no gap or repeat', async () => {
    cluster = await PgCluster.create();
    const db = await ensureDatabase(cluster.url, 'lifeline');
    const engine = await startEngine(
      tempDir('lifeline-stream-outage-'),
      { db, database: { pool_max: 4, connect_timeout: '1s', statement_timeout: '5s' } },
      'postgres',
    );
    cleanups.push(() => engine.close());
    const base = await serveStreams(engine);
    const live = await openSse(`${base}/v1/events/stream`);
    cleanups.push(() => live.close());

    const first = await engine.createDeployment({ name: 'before', plan: 'ok' }, OPERATOR);
    await live.until((r) => r.events.some((e) => e.deployment_id === first.id), 'the first create');

    await cluster.stop('fast');
    // A stream opened during the outage gets its headers and waits for the store like the others.
    const late = await openSse(`${base}/v1/events/stream?after=0`);
    cleanups.push(() => late.close());
    expect(late.status).toBe(200);
    const kaLive = live.comments.length;
    const kaLate = late.comments.length;
    // Reads fail meanwhile (the hub retries them): keepalives keep coming on both streams.
    await live.until((r) => r.comments.length >= kaLive + 5, 'keepalives on the live stream while down');
    await late.until((r) => r.comments.length >= kaLate + 5, 'keepalives on the late stream while down');
    await expect(engine.listEvents({ after: 0, limit: 10 })).rejects.toThrow();
    expect(live.ended).toBe(false);
    expect(late.ended).toBe(false);

    await cluster.start();
    const after = await waitFor(
      async () => engine.createDeployment({ name: 'after', plan: 'ok' }, OPERATOR).catch(() => null),
      'a write once the database is back',
      30_000,
    );
    for (const s of [live, late]) {
      await s.until((r) => r.events.some((e) => e.deployment_id === after.id), 'the create after the outage');
    }
    const all = (await engine.listEvents({ after: 0, limit: 1000 })).items.map((e) => e.seq);
    expect(late.seqs).toEqual(all);
    expect(contiguous(late.seqs, 1)).toBe(true);
    expect(live.seqs).toEqual(all);
    expect(live.ended).toBe(false);
  }, 120_000);
});
