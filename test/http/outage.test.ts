// A database restart under load is an outage, not a crash (issue 7): a real `lifeline serve` on a
// Postgres cluster of this file's own (the run's shared one cannot be stopped under other files), a
// steady load of creates and reads, and `pg_ctl stop -m fast` for a few seconds. During the outage every
// request that needs the store answers 503 STORE_UNAVAILABLE with Retry-After, liveness stays 200 and
// readiness 503; no 500, the process lives, a running attempt keeps running; afterwards writes work
// again by themselves and the stored states equal the fold of their events.
// Postgres only by nature: SQLite has no server to stop (its busy/IO errors map to 503 the same way,
// see test/store/errors.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import { FIXTURES, tempDir, waitFor } from '../helpers/engine.ts';
import { tellCtl } from '../helpers/fifo.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';
import { ensureDatabase, PgCluster } from '../helpers/pg.ts';
import { lifelineArgv } from '../helpers/lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

let cluster: PgCluster | null = null;
let server: ChildProcess | null = null;
afterAll(async () => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  await cluster?.destroy();
});

function writeConfig(dir: string, db: string): string {
  const file = path.join(dir, 'lifeline.yaml');
  fs.writeFileSync(
    file,
    `server: { host: 127.0.0.1, port: 0 }
db: ${JSON.stringify(db)}
data_dir: ./data
reap_interval: 1s
database: { pool_max: 5, connect_timeout: 1s, statement_timeout: 5s }
plans:
  ok:
    deploy: ['${FIXTURES}/ok.sh']
    teardown: ['${FIXTURES}/ok.sh']
  ctl:
    deploy: ['${FIXTURES}/ctl.sh']
    teardown: ['${FIXTURES}/ok.sh']
`,
  );
  return file;
}

interface Answer {
  phase: 'before' | 'down' | 'after';
  method: string;
  path: string;
  status: number;
  code?: string;
  retryAfter: string | null;
}

describe('a database restart under load (postgres)', () => {
  it('answers 503 while Postgres is down, never 500, keeps running, and resumes by itself', async () => {
    cluster = await PgCluster.create();
    const db = await ensureDatabase(cluster.url, 'lifeline');
    const dir = tempDir('lifeline-outage-');
    const cfg = writeConfig(dir, db);
    const proc = spawn(process.execPath, [...lifelineArgv(), 'serve', '--config', cfg], {
      cwd: ROOT,
      env: { ...process.env, LIFELINE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server = proc;
    let out = '';
    let err = '';
    proc.stdout!.on('data', (b) => (out += b));
    proc.stderr!.on('data', (b) => (err += b));
    const base = await waitFor(
      () => {
        if (proc.exitCode !== null) throw new Error(`server exited: ${err}`);
        return /Lifeline listening on (http:\/\/[^"\s]+)/.exec(out)?.[1] ?? null;
      },
      'the server to listen',
      90_000,
    );

    let phase: Answer['phase'] = 'before';
    const answers: Answer[] = [];
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(base + p, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const parsed = text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : null;
      answers.push({
        phase,
        method,
        path: p,
        status: res.status,
        code: parsed?.code,
        retryAfter: res.headers.get('retry-after'),
      });
      return { status: res.status, body: parsed };
    };

    // An attempt that runs through the outage: its exit lands on disk while the database is down (the
    // `ctl` plan exits when the test tells it, test/helpers/fifo.ts).
    const through = await call('POST', '/v1/deployments', { name: 'through', plan: 'ctl' });
    expect(through.status).toBe(201);
    const att = (await call('POST', '/v1/deployments/through/attempts')).body;
    await waitFor(
      async () => (await call('GET', `/v1/attempts/${att.id}`)).body?.state === 'running',
      'the attempt to run',
    );

    // Steady load: each worker creates, reads it back, lists, in a loop.
    let stop = false;
    let n = 0;
    const worker = async (w: number) => {
      while (!stop) {
        const name = `load-${w}-${n++}`;
        await call('POST', '/v1/deployments', { name, plan: 'ok' });
        await call('GET', `/v1/deployments/${name}`);
        await call('GET', '/v1/deployments?limit=5');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const load = Promise.all([0, 1, 2].map(worker));
    // Conditions, not fixed sleeps: the load runs before the outage, and the outage is seen.
    const count = (ph: Answer['phase'], status: number) =>
      answers.filter((a) => a.phase === ph && a.status === status).length;
    await waitFor(() => count('before', 201) >= 6, 'creates before the outage', 60_000);

    phase = 'down';
    await cluster.stop('fast');
    const ready = await waitFor(
      async () => {
        const res = await fetch(`${base}/v1/health/ready`);
        return res.status === 503 ? res : null;
      },
      'readiness to say 503',
      60_000,
    );
    expect(await ready.json()).toMatchObject({ ready: false, checks: { db: false } });
    const live = await fetch(`${base}/v1/health`);
    expect(live.status).toBe(200);
    // The load keeps hitting the server while the database is down: many 503s, no death.
    await waitFor(() => count('down', 503) >= 30, '503s under load during the outage', 60_000);
    await waitFor(
      () => /store unavailable; background work will retry/.test(out),
      'background work to see it',
      60_000,
    );
    expect(proc.exitCode, `the server died: ${err}`).toBeNull();
    await tellCtl(path.join(dir, 'data'), through.body.id, 0);
    const exitRecord = path.join(dir, 'data', 'attempts', att.id, 'exit');
    await waitFor(() => fs.existsSync(exitRecord), 'its exit record while the database is down');

    await cluster.start();
    phase = 'after';
    // Writes resume by themselves: no restart of the server.
    await waitFor(
      () => answers.some((a) => a.phase === 'after' && a.method === 'POST' && a.status === 201),
      'a create to succeed after the restart',
      30_000,
    );
    await waitFor(() => count('after', 201) >= 6, 'creates after the restart', 60_000);
    stop = true;
    await load;

    expect(proc.exitCode, `the server died: ${err}`).toBeNull();
    expect(err).not.toMatch(/Unhandled|uncaught/i);
    const bad = answers.filter((a) => a.status >= 500 && a.status !== 503);
    expect(bad, JSON.stringify(bad.slice(0, 5))).toEqual([]);
    const unavailable = answers.filter((a) => a.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const a of unavailable) {
      expect(a.code).toBe('STORE_UNAVAILABLE');
      expect(a.retryAfter).not.toBeNull();
    }
    // Outside the outage nothing failed; inside it, only 503s (and reads/writes that still got through).
    for (const a of answers.filter((x) => x.phase === 'before')) expect(a.status).toBeLessThan(300);
    for (const a of answers.filter((x) => x.phase === 'down'))
      expect([200, 201, 404, 503]).toContain(a.status);
    expect(await (await fetch(`${base}/v1/health/ready`)).json()).toMatchObject({ ready: true });

    // The attempt kept running through the outage and ends truthfully, its output once.
    const ended = await waitFor(
      async () => {
        const a = (await call('GET', `/v1/attempts/${att.id}`)).body;
        return a?.state === 'succeeded' ? a : null;
      },
      'the attempt to end',
      30_000,
    );
    expect(ended).toMatchObject({ rc: 0 });
    expect(await (await fetch(`${base}/v1/attempts/${att.id}/log`)).text()).toBe(
      'waiting for control\nexiting 0\n',
    );

    // The log says the outage once it began and once it ended, not on every watcher tick.
    expect(out).toMatch(/store unavailable; background work will retry/);
    expect(out.split('\n').filter((l) => l.includes('store unavailable; background')).length).toBeLessThan(5);

    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    const store = await openStore(db);
    try {
      const snap = await snapshotOf(store.db);
      expect(snap.deployments.length).toBeGreaterThan(1);
      expectStoreInvariants(snap);
      expectAttemptHistories(snap);
    } finally {
      await store.close();
    }
  }, 240_000);
});
