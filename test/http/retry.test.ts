// Automatic retry (SPEC §9.1) through real `lifeline serve` processes on SQLite and Postgres: the API's
// `retry` field, cancel of a waiting retry (202 + retry_cancelled), and a retry waiting across a
// SIGKILL of the server that starts exactly once after the restart; and two servers on one Postgres
// database racing for one due retry.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import { DIALECTS, dbUrlFor, FIXTURES, fixturePlans, tempDir, waitFor } from '../helpers/engine.ts';
import { call, killAllServers, serve, type Served, type ServeOptions } from '../helpers/servers.ts';

afterAll(killAllServers);

const plans = {
  ...fixturePlans(),
  // Fails once, then succeeds; its retries are due 0–20 days after a failure, so none starts by itself
  // during the test: the test moves the schedule to "now" while the server is down.
  once: {
    deploy: [path.join(FIXTURES, 'flaky.sh')],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    env: { FLAKY_FAILS: '1' },
    retry: { max: 3, backoff: '20d' },
  },
};

const eventsOf = async (url: string, name: string, type: string) =>
  (await call(url, 'GET', `/v1/deployments/${name}/events?type=${type}&limit=1000`)).body.items as {
    seq: number;
    attempt_id: string;
    data: Record<string, unknown>;
  }[];

describe.each(DIALECTS)('automatic retry over HTTP on %s', (dialect) => {
  // One server for the two tests (each on a deployment of its own), started by whichever runs first:
  // the cancel test uses it; the SIGKILL test kills it (as its first life) and starts it again on the
  // same database and data dir. A server start is most of either test's time. A long reap interval:
  // after the restart only the start-up pass (or the timer) can start the waiting retry.
  let shared: Promise<{ opts: ServeOptions; server: Served }> | null = null;
  const sharedServer = () =>
    (shared ??= (async () => {
      const dir = tempDir();
      const db = await dbUrlFor(dialect, dir);
      const opts = { db, dataDir: path.join(dir, 'data'), plans, extra: { reap_interval: '1h' } };
      return { opts, server: await serve(opts) };
    })());

  it('shows the waiting retry, cancels it with 202 + retry_cancelled, then refuses a second cancel', async () => {
    const { server } = await sharedServer();
    expect((await call(server.url, 'POST', '/v1/deployments', { name: 'cw', plan: 'once' })).status).toBe(
      201,
    );
    const first = (await call(server.url, 'POST', '/v1/deployments/cw/attempts', {})).body;
    const dep = await waitFor(async () => {
      const d = (await call(server.url, 'GET', '/v1/deployments/cw')).body;
      return d.retry ? d : null;
    }, 'the schedule');
    expect(dep.state).toBe('failed');
    expect(dep.retry).toEqual({ number: 1, of: 3, at: expect.any(String) });
    const listed = (await call(server.url, 'GET', '/v1/deployments?state=failed')).body.items;
    expect(listed.find((d: { name: string }) => d.name === 'cw').retry).toEqual(dep.retry);

    const cancel = await call(server.url, 'POST', '/v1/deployments/cw/cancel');
    expect(cancel.status).toBe(202);
    expect(cancel.body).toMatchObject({ id: first.id, state: 'failed', reason: 'exit_nonzero' });
    const after = (await call(server.url, 'GET', '/v1/deployments/cw')).body;
    expect(after).toMatchObject({ state: 'failed', retry: null, version: dep.version });
    const cancelled = await eventsOf(server.url, 'cw', 'retry_cancelled');
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]).toMatchObject({
      attempt_id: first.id,
      data: { number: 1, of: 3, at: dep.retry.at },
    });

    const again = await call(server.url, 'POST', '/v1/deployments/cw/cancel');
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('NO_INFLIGHT_ATTEMPT');
  }, 240_000);

  it('a retry waiting across a server SIGKILL starts once after the restart', async () => {
    const { opts, server: first } = await sharedServer();
    shared = null; // killed below: a test after this one starts its own
    const { db } = opts;
    expect((await call(first.url, 'POST', '/v1/deployments', { name: 'sk', plan: 'once' })).status).toBe(201);
    const failed = (await call(first.url, 'POST', '/v1/deployments/sk/attempts', {})).body;
    const waiting = await waitFor(async () => {
      const d = (await call(first.url, 'GET', '/v1/deployments/sk')).body;
      return d.retry ? d : null;
    }, 'the schedule');
    await first.crash();

    // While no server runs, the wait elapses: the schedule comes due.
    const store = await openStore(db);
    const due = new Date(Date.now() - 1000).toISOString();
    await store.db.updateTable('deployments').set({ retry_at: due }).where('name', '=', 'sk').execute();
    await store.close();

    const second = await serve(opts);
    try {
      const ready = await waitFor(
        async () => {
          const d = (await call(second.url, 'GET', '/v1/deployments/sk')).body;
          return d.state === 'ready' ? d : null;
        },
        'ready after the restart',
        60_000,
      );
      expect(ready.retry).toBeNull();
      const attempts = (await call(second.url, 'GET', '/v1/deployments/sk/attempts')).body.items.reverse();
      expect(
        attempts.map((a: { number: number; state: string; requested_by: string }) => [
          a.number,
          a.state,
          a.requested_by,
        ]),
      ).toEqual([
        [1, 'failed', failed.requested_by],
        [2, 'succeeded', 'retry'],
      ]);
      const transitions = (await call(second.url, 'GET', '/v1/deployments/sk/transitions')).body.items;
      expect(
        transitions
          .filter((t: { to: string }) => t.to === 'deploying')
          .map((t: { actor: string; reason: string }) => [t.actor, t.reason]),
      ).toEqual([
        [failed.requested_by, null],
        ['retry', 'retry 1/3'],
      ]);
      expect(await eventsOf(second.url, 'sk', 'retry_scheduled')).toEqual([
        expect.objectContaining({ attempt_id: failed.id, data: { number: 1, of: 3, at: waiting.retry.at } }),
      ]);
      expect(await eventsOf(second.url, 'sk', 'attempt_start')).toHaveLength(2);
    } finally {
      await second.stop();
    }
    // A third start finds nothing left to do.
    const third = await serve(opts);
    try {
      await new Promise((r) => setTimeout(r, 500));
      expect((await call(third.url, 'GET', '/v1/deployments/sk/attempts')).body.items).toHaveLength(2);
    } finally {
      await third.stop();
    }
  }, 300_000);
});

describe('automatic retry with two lifeline serve instances on one Postgres database', () => {
  it('a due retry starts exactly once, whichever instance gets there', async () => {
    const dir = tempDir();
    const db = await dbUrlFor('postgres', dir);
    const counter = path.join(dir, 'runs');
    const shared = { ...plans, once: { ...plans.once, env: { FLAKY_FAILS: '1', FLAKY_FILE: counter } } };
    // Both look for due retries every 100 ms, so both race for it.
    const extra = { reap_interval: '100ms', lease_ttl: '3s' };
    const [a, b] = await Promise.all(
      ['a', 'b'].map((n) => serve({ db, dataDir: path.join(dir, n), plans: shared, extra })),
    );
    try {
      expect((await call(a.url, 'POST', '/v1/deployments', { name: 'two', plan: 'once' })).status).toBe(201);
      const failed = (await call(a.url, 'POST', '/v1/deployments/two/attempts', {})).body;
      await waitFor(async () => (await call(b.url, 'GET', '/v1/deployments/two')).body.retry, 'the schedule');
      const store = await openStore(db);
      await store.db
        .updateTable('deployments')
        .set({ retry_at: new Date().toISOString() })
        .where('name', '=', 'two')
        .execute();
      await store.close();
      await waitFor(
        async () => (await call(b.url, 'GET', '/v1/deployments/two')).body.state === 'ready',
        'ready',
        60_000,
      );
      // Give a second start every chance to happen: many passes of both instances.
      await new Promise((r) => setTimeout(r, 1000));
      const attempts = (await call(a.url, 'GET', '/v1/deployments/two/attempts')).body.items.reverse();
      expect(
        attempts.map((x: { id: string; requested_by: string; state: string }) => [x.requested_by, x.state]),
      ).toEqual([
        [failed.requested_by, 'failed'],
        ['retry', 'succeeded'],
      ]);
      expect(await eventsOf(b.url, 'two', 'attempt_start')).toHaveLength(2);
      const starts = (await call(b.url, 'GET', '/v1/deployments/two/transitions')).body.items.filter(
        (t: { to: string }) => t.to === 'deploying',
      );
      expect(starts.map((t: { reason: string | null }) => t.reason)).toEqual([null, 'retry 1/3']);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 300_000);
});
