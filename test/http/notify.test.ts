// Cross-instance wake-ups (issue 7): two engines on one Postgres database, a stream served by A, commits
// made through B. The stream's safety poll is set to a minute, so B's events can only reach A's stream
// within the test's wait through LISTEN/NOTIFY (or the listener's wake after it reconnects). Postgres only
// by nature: SQLite has one instance per file.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { sendProblem, toProblem } from '../../src/http/problem.ts';
import { streamRoutes } from '../../src/http/stream.ts';
import { dbUrlFor, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';
import { adminQuery } from '../helpers/pg.ts';
import { contiguous, openSse, type SseReader } from '../helpers/sse.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A's stream routes alone, with a safety poll too long to matter during the test. */
async function serveStreams(engine: Lifeline): Promise<string> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.setErrorHandler((err, req, reply) => sendProblem(reply, toProblem(err, req)));
  await app.register(streamRoutes, { api: engine, pollMs: 60_000, keepaliveMs: 60_000 });
  await app.listen({ port: 0, host: '127.0.0.1' });
  cleanups.push(() => app.close());
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return `http://127.0.0.1:${addr.port}`;
}

async function twoInstances(): Promise<{ a: Lifeline; b: Lifeline; db: string }> {
  const dirA = tempDir('lifeline-notify-a-');
  const db = await dbUrlFor('postgres', dirA);
  const a = await startEngine(dirA, {}, 'postgres');
  cleanups.push(() => a.close());
  const b = await startEngine(tempDir('lifeline-notify-b-'), { db }, 'postgres');
  cleanups.push(() => b.close());
  return { a, b, db };
}

const listeners = async (db: string) =>
  Number(
    (
      await adminQuery(
        db,
        `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'lifeline-listen' AND datname = current_database()`,
      )
    ).rows[0].n,
  );

describe('wake-ups across instances (postgres)', () => {
  it("delivers B's commit on A's stream without waiting for the poll, also after A's listener reconnects", async () => {
    const { a, b, db } = await twoInstances();
    const stream: SseReader = await openSse(`${await serveStreams(a)}/v1/events/stream`);
    cleanups.push(() => stream.close());

    // A's own commit wakes its reader in-process: once it arrives, the stream is live.
    await a.createDeployment({ name: 'on-a', plan: 'ok' }, OPERATOR);
    await stream.until(
      (r) => r.events.some((e) => e.deployment_id && e.type === 'deployment_created'),
      'on-a',
    );

    const made = await b.createDeployment({ name: 'on-b', plan: 'ok' }, OPERATOR);
    await stream.until((r) => r.events.some((e) => e.deployment_id === made.id), "B's create on A's stream");

    // Drop both listening sessions, as a database restart would; B commits while A may still be away.
    await waitFor(async () => (await listeners(db)) === 2, 'both listeners connected');
    await adminQuery(
      db,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lifeline-listen' AND datname = current_database()`,
    );
    const again = await b.createDeployment({ name: 'after-drop', plan: 'ok' }, OPERATOR);
    await stream.until(
      (r) => r.events.some((e) => e.deployment_id === again.id),
      "B's create after the listener was dropped",
    );
    await waitFor(async () => (await listeners(db)) === 2, 'both listeners back');
    const later = await b.createDeployment({ name: 'after-reconnect', plan: 'ok' }, OPERATOR);
    await stream.until((r) => r.events.some((e) => e.deployment_id === later.id), 'a create after reconnect');

    // Every event once, in order, none missing.
    const all = (await a.listEvents({ after: 0, limit: 1000 })).items.map((e) => e.seq);
    await stream.until((r) => r.seqs.length >= all.length, 'every event');
    expect(stream.seqs).toEqual(all);
    expect(contiguous(stream.seqs, all[0])).toBe(true);
  }, 60_000);
});
