// Postgres stopped past the instances' lease under three instances (issue 7): three real `lifeline serve` processes on one
// database of a cluster of this file's own (the run's shared cluster cannot be stopped under other files),
// each under a steady load of creates, deploys and reads, and `pg_ctl stop -m fast` for twice the lease
// (every instance's lease lapses: the test waits for each to say so and re-register). During the
// outage every answer is a success or a 503 STORE_UNAVAILABLE (problem+json, Retry-After), never a 500;
// every instance lives through it, keeps /v1/health at 200 and /v1/health/ready at 503; writes resume by
// themselves on every instance; an attempt that ran through the outage ends truthfully; and at the end
// every deployment's state equals the fold of its events (test/helpers/invariants.ts).
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import { fixturePlans, tempDir, waitFor } from '../helpers/engine.ts';
import { tellCtl } from '../helpers/fifo.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';
import { ensureDatabase, PgCluster } from '../helpers/pg.ts';
import { call, killAllServers, serve, type Served } from '../helpers/servers.ts';

let cluster: PgCluster | null = null;
afterAll(async () => {
  await killAllServers();
  await cluster?.destroy();
});

// A lease shorter than the outage: every instance finds its lease lapsed and re-registers by itself.
const LEASE_MS = 1_500;
const EXTRA = {
  lease_ttl: `${LEASE_MS}ms`,
  reap_interval: '1s',
  start_deadline: '5s',
  database: { pool_max: 5, connect_timeout: '1s', statement_timeout: '5s' },
};
// The attempt that runs through the outage is `ctl`'s: it exits when told (test/helpers/fifo.ts), once
// the outage is over.
const plans = fixturePlans();

type Phase = 'before' | 'down' | 'after';
interface Answer {
  phase: Phase;
  instance: number;
  what: string;
  status: number;
  problem: boolean;
  code?: string;
  retryAfter: string | null;
}

describe('three instances while Postgres is down for twice their lease', () => {
  it('answer only successes and 503s, stay up, resume writes by themselves, and keep the fold true', async () => {
    cluster = await PgCluster.create();
    const db = await ensureDatabase(cluster.url, 'lifeline');
    const dir = tempDir('lifeline-scale-outage-');
    const start = (i: number) => serve({ db, dataDir: path.join(dir, `i${i}`), extra: EXTRA, plans });
    // The first runs the migrations; then the other two.
    const servers: Served[] = [await start(0)];
    servers.push(...(await Promise.all([1, 2].map(start))));

    let phase: Phase = 'before';
    const answers: Answer[] = [];
    /** Status 0: no answer within 30 s (connect_timeout is 1 s, statement_timeout 5 s: a hang is a bug). */
    const ask = async (i: number, method: string, p: string, body?: unknown) => {
      let res: Response;
      let text: string;
      try {
        res = await fetch(servers[i].url + p, {
          method,
          headers: body === undefined ? {} : { 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
        text = await res.text();
      } catch (err) {
        answers.push({
          phase,
          instance: i,
          what: `${method} ${p}: ${err}`,
          status: 0,
          problem: false,
          retryAfter: null,
        });
        return { status: 0, body: null };
      }
      const type = res.headers.get('content-type') ?? '';
      const parsed = text && type.includes('json') ? JSON.parse(text) : null;
      answers.push({
        phase,
        instance: i,
        what: `${method} ${p}`,
        status: res.status,
        problem: type.startsWith('application/problem+json'),
        code: parsed?.code,
        retryAfter: res.headers.get('retry-after'),
      });
      return { status: res.status, body: parsed };
    };

    // An attempt that runs through the whole outage: it must end `succeeded`, not lost.
    const throughDep = await ask(0, 'POST', '/v1/deployments', { name: 'through', plan: 'ctl' });
    expect(throughDep.status).toBe(201);
    const through = (await ask(0, 'POST', '/v1/deployments/through/attempts', {})).body.id as string;
    await waitFor(
      async () => (await call(servers[1].url, 'GET', `/v1/attempts/${through}`)).body?.state === 'running',
      'the long attempt to run',
    );

    // Steady load on every instance: create, deploy what was created, read it back, list.
    let stop = false;
    const worker = async (i: number) => {
      for (let n = 0; !stop; n++) {
        const name = `load-${i}-${n}`;
        const created = await ask(i, 'POST', '/v1/deployments', { name, plan: n % 2 ? 'ok' : 'short' });
        if (created.status === 201) await ask(i, 'POST', `/v1/deployments/${name}/attempts`, {});
        await ask(i, 'GET', `/v1/deployments/${created.status === 201 ? name : 'through'}`);
        await ask(i, 'GET', '/v1/deployments?limit=5');
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const load = Promise.all(servers.map((_, i) => worker(i)));
    // Conditions, not fixed sleeps: each instance has served writes before the outage and 503s in it.
    const count = (ph: Phase, i: number, status: number) =>
      answers.filter((a) => a.phase === ph && a.instance === i && a.status === status).length;
    for (const i of [0, 1, 2]) await waitFor(() => count('before', i, 201) >= 3, `creates on ${i}`);

    phase = 'down';
    await cluster.stop('fast');
    const downAt = Date.now();
    for (const s of servers) {
      const ready = await waitFor(async () => {
        const res = await fetch(`${s.url}/v1/health/ready`);
        return res.status === 503 ? res : null;
      }, 'readiness to say 503');
      expect(await ready.json()).toMatchObject({ ready: false, checks: { db: false } });
      expect((await fetch(`${s.url}/v1/health`)).status).toBe(200);
    }
    for (const i of [0, 1, 2]) await waitFor(() => count('down', i, 503) >= 5, `503s on ${i}`);
    // Down for twice the lease, so every lease lapses (checked below from each instance's log).
    await new Promise((r) => setTimeout(r, Math.max(0, 2 * LEASE_MS - (Date.now() - downAt))));
    for (const s of servers) expect(s.proc.exitCode, `an instance died:\n${s.output()}`).toBeNull();

    await cluster.start();
    phase = 'after';
    // Writes resume by themselves on every instance: no restart.
    for (const i of [0, 1, 2]) {
      await waitFor(
        () => answers.some((a) => a.phase === 'after' && a.instance === i && a.status === 201),
        `a create on instance ${i} after the restart`,
        60_000,
      ).catch((err) => {
        const mine = answers.filter((a) => a.instance === i).slice(-10);
        throw new Error(
          `${err.message}\n${JSON.stringify(mine, null, 1)}\n${servers[i].output().slice(-3000)}`,
        );
      });
    }
    for (const i of [0, 1, 2]) await waitFor(() => count('after', i, 201) >= 3, `creates on ${i} after`);
    // Each lease lapsed in the outage, and each instance re-registered by itself.
    for (const s of servers) {
      await waitFor(() => /re-registered with a new lease epoch/.test(s.output()), 're-registration');
      expect(s.output()).toMatch(/lease lapsed/);
    }
    stop = true;
    await load;

    for (const s of servers) {
      expect(s.proc.exitCode, `an instance died:\n${s.output()}`).toBeNull();
      expect(s.proc.signalCode).toBeNull();
      expect(s.output()).not.toMatch(/Unhandled|uncaught/i);
    }
    const hung = answers.filter((a) => a.status === 0);
    expect(hung, JSON.stringify(hung.slice(0, 5))).toEqual([]);
    const bad = answers.filter((a) => a.status >= 500 && a.status !== 503);
    expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([]);
    const down = answers.filter((a) => a.phase === 'down');
    expect(down.filter((a) => a.status === 503).length).toBeGreaterThan(0);
    for (const a of down) expect([200, 201, 202, 503], `${a.what} on ${a.instance}`).toContain(a.status);
    for (const a of answers.filter((x) => x.status === 503)) {
      expect(a).toMatchObject({ problem: true, code: 'STORE_UNAVAILABLE' });
      expect(a.retryAfter).not.toBeNull();
    }
    for (const a of answers.filter((x) => x.phase === 'before')) expect(a.status, a.what).toBeLessThan(300);
    for (const s of servers) expect((await fetch(`${s.url}/v1/health/ready`)).status).toBe(200);

    // The attempt that ran through the outage ends from its real exit, and every attempt ends.
    await tellCtl(path.join(dir, 'i0'), throughDep.body.id, 0);
    const ended = await waitFor(
      async () => {
        const a = (await call(servers[2].url, 'GET', `/v1/attempts/${through}`)).body;
        return a && a.state !== 'running' && a.state !== 'queued' ? a : null;
      },
      'the long attempt to end',
      60_000,
    );
    expect(ended).toMatchObject({ state: 'succeeded', rc: 0 });
    await waitFor(
      async () => {
        const busy = await Promise.all(
          ['deploying', 'tearing_down'].map(
            async (st) =>
              (await call(servers[0].url, 'GET', `/v1/deployments?state=${st}&limit=1`)).body.items,
          ),
        );
        return busy.every((items) => items.length === 0);
      },
      'every attempt to end',
      60_000,
    );

    await Promise.all(servers.map((s) => s.stop()));
    const store = await openStore(db);
    try {
      const snap = await snapshotOf(store.db);
      expect(snap.deployments.length).toBeGreaterThan(3);
      expectStoreInvariants(snap);
      expectAttemptHistories(snap);
    } finally {
      await store.close();
    }
  }, 420_000);
});
