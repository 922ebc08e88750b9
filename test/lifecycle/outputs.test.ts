// Outputs (SPEC §12.1, issue 19 point 1) on both stores: `{"output": {…}}` runner events merge into the
// attempt's outputs; a succeeded deploy makes them the deployment's, with `outputs_changed`, in the
// transaction of its end; a failure keeps the old ones; a succeeded teardown clears them; secrets are
// masked; the 64 KiB bound and a non-object `output` are markers, not crashes; fold = stored.
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { OUTPUTS_LIMIT } from '../../src/domain/outputs.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { readExit } from '../../src/runner/rundir.ts';
import { DIALECTS, dbUrlFor, type TestDialect } from '../helpers/dialect.ts';
import { ADMIN, FIXTURES, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';

const engines: Lifeline[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
});

const SECRET = 'hunter2-s3cret';

async function open(dialect: TestDialect, extra: Record<string, unknown> = {}): Promise<Lifeline> {
  const dir = tempDir('lifeline-outputs-');
  const script = [path.join(FIXTURES, 'outputs.sh')];
  const config = configFromObject(
    {
      data_dir: dir,
      db: await dbUrlFor(dialect, dir),
      durable_commits: false,
      start_deadline: '5s',
      ...extra,
      plans: {
        out: {
          deploy: script,
          teardown: script,
          params: {
            type: 'object',
            properties: {
              lines: { type: 'array' },
              rc: { type: 'integer' },
              token: { type: 'string', writeOnly: true },
            },
            additionalProperties: false,
          },
        },
      },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: quietLogger() });
  engines.push(engine);
  await engine.start();
  return engine;
}

async function ended(engine: Lifeline, id: string) {
  await waitFor(async () => {
    const a = await engine.getAttempt(id);
    return a.state !== 'queued' && a.state !== 'running';
  }, `attempt ${id} ended`);
  await engine.settle();
  return engine.getAttempt(id);
}

async function eventsOf(engine: Lifeline, deploymentId: string, type: string) {
  const rows = await engine.store.db
    .selectFrom('events')
    .select(['seq', 'type', 'attempt_id', 'data'])
    .where('deployment_id', '=', deploymentId)
    .where('type', '=', type)
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({ seq: Number(r.seq), attempt_id: r.attempt_id, data: JSON.parse(r.data) }));
}

async function expectConsistent(engine: Lifeline) {
  const s = await snapshotOf(engine.store.db);
  expectStoreInvariants(s);
  expectAttemptHistories(s);
}

const out = (o: unknown) => ({ output: o });

describe.each(DIALECTS)('outputs on %s', (dialect: TestDialect) => {
  it('merges published keys (later win); a succeeded deploy makes them the deployment’s with outputs_changed after attempt_end', async () => {
    const engine = await open(dialect);
    const dep = await engine.createDeployment(
      {
        name: 'merge',
        plan: 'out',
        params: {
          lines: [
            out({ vlan: 107, ip: '10.7.0.1', nested: { a: 1 } }),
            { phase: 'x' },
            out({ ip: '10.7.0.2', ok: true }),
          ],
        },
      },
      ADMIN,
    );
    const att = await ended(engine, (await engine.startDeploy('merge', {}, ADMIN)).id);
    const want = { vlan: 107, ip: '10.7.0.2', nested: { a: 1 }, ok: true };
    expect(att.state).toBe('succeeded');
    expect(att.outputs).toEqual(want);
    expect((await engine.getDeployment('merge')).outputs).toEqual(want);
    const changed = await eventsOf(engine, dep.id, 'outputs_changed');
    expect(changed).toEqual([{ seq: expect.any(Number), attempt_id: att.id, data: { outputs: want } }]);
    const [end] = await eventsOf(engine, dep.id, 'attempt_end');
    expect(changed[0].seq).toBe(end.seq + 1);
    // The runner events are stored as written too.
    const runner = (await eventsOf(engine, dep.id, 'runner_event')).map((e) => e.data);
    expect(runner).toEqual([
      out({ vlan: 107, ip: '10.7.0.1', nested: { a: 1 } }),
      { phase: 'x' },
      out({ ip: '10.7.0.2', ok: true }),
    ]);

    // The same outputs again: nothing changed, no event (the fold still gives the stored value).
    await ended(engine, (await engine.startDeploy('merge', {}, ADMIN)).id);
    expect(await eventsOf(engine, dep.id, 'outputs_changed')).toHaveLength(1);
    // A deploy that publishes nothing: its (empty) outputs become the deployment's.
    await ended(engine, (await engine.startDeploy('merge', { params: { lines: [] } }, ADMIN)).id);
    expect((await engine.getDeployment('merge')).outputs).toEqual({});
    expect((await eventsOf(engine, dep.id, 'outputs_changed')).map((e) => e.data)).toEqual([
      { outputs: want },
      { outputs: {} },
    ]);
    // A rollback to attempt 1 runs its params: its outputs come back.
    const rb = await ended(engine, (await engine.rollback('merge', { to: 1 }, ADMIN)).id);
    expect(rb.state).toBe('succeeded');
    expect((await engine.getDeployment('merge')).outputs).toEqual(want);
    await expectConsistent(engine);
  }, 60_000);

  it('a failed attempt leaves the deployment’s outputs as they were; a succeeded teardown clears them', async () => {
    const engine = await open(dialect);
    const dep = await engine.createDeployment(
      { name: 'keep', plan: 'out', params: { lines: [out({ site: '/srv/a' })] } },
      ADMIN,
    );
    await ended(engine, (await engine.startDeploy('keep', {}, ADMIN)).id);
    expect((await engine.getDeployment('keep')).outputs).toEqual({ site: '/srv/a' });

    const bad = await ended(
      engine,
      (await engine.startDeploy('keep', { params: { lines: [out({ site: '/srv/b' })], rc: 1 } }, ADMIN)).id,
    );
    expect(bad.state).toBe('failed');
    expect(bad.outputs).toEqual({ site: '/srv/b' });
    const after = await engine.getDeployment('keep');
    expect([after.state, after.outputs]).toEqual(['failed', { site: '/srv/a' }]);
    expect(await eventsOf(engine, dep.id, 'outputs_changed')).toHaveLength(1);

    const td = await ended(engine, (await engine.teardown('keep', { confirm: 'keep' }, ADMIN)).id);
    expect(td.state).toBe('succeeded');
    const gone = await engine.getDeployment('keep');
    expect([gone.state, gone.outputs]).toEqual(['torn_down', {}]);
    const changed = await eventsOf(engine, dep.id, 'outputs_changed');
    expect(changed.map((e) => [e.attempt_id, e.data])).toEqual([
      [expect.any(String), { outputs: { site: '/srv/a' } }],
      [td.id, { outputs: {} }],
    ]);
    await expectConsistent(engine);
  }, 60_000);

  it('masks secret param values in outputs, their events and the API, also a value that became secret later', async () => {
    const engine = await open(dialect);
    const dep = await engine.createDeployment(
      {
        name: 'mask',
        plan: 'out',
        params: {
          token: SECRET,
          lines: [
            out({
              password: '$TOKEN',
              url: 'pg://app:$TOKEN@db/app',
              $TOKEN: 'as a key',
              next: 'later-secret',
            }),
          ],
        },
      },
      ADMIN,
    );
    const att = await ended(engine, (await engine.startDeploy('mask', {}, ADMIN)).id);
    const want = { password: '***', url: 'pg://app:***@db/app', '***': 'as a key', next: 'later-secret' };
    expect(att.outputs).toEqual(want);
    expect((await engine.getDeployment('mask')).outputs).toEqual(want);
    // Stored masked: no event and no row holds the secret.
    const rows = await engine.store.db.selectFrom('events').select('data').execute();
    expect(rows.filter((r) => r.data.includes(SECRET))).toEqual([]);
    const stored = await engine.store.db
      .selectFrom('deployments')
      .select('outputs')
      .where('id', '=', dep.id)
      .executeTakeFirstOrThrow();
    expect(stored.outputs).not.toContain(SECRET);

    // The next deploy's token is a value the outputs already hold; it fails, so the outputs stay:
    // shown masked with the params the deployment holds now.
    await ended(
      engine,
      (await engine.startDeploy('mask', { params: { token: 'later-secret', rc: 1 } }, ADMIN)).id,
    );
    const d = await engine.getDeployment('mask');
    expect(d.outputs).toEqual({ ...want, next: '***' });
    expect((await engine.listDeployments({})).items[0].outputs).toEqual({ ...want, next: '***' });
    await expectConsistent(engine);
  }, 60_000);

  it('past 64 KiB an output is refused with a marker; the outputs stay at the last accepted value and the attempt ends by its code', async () => {
    const engine = await open(dialect);
    const big = (c: string) => c.repeat(30_000);
    const dep = await engine.createDeployment(
      {
        name: 'big',
        plan: 'out',
        params: {
          lines: [out({ a: big('a') }), out({ b: big('b') }), out({ c: big('c') }), out({ small: 1 })],
        },
      },
      ADMIN,
    );
    const att = await ended(engine, (await engine.startDeploy('big', {}, ADMIN)).id);
    expect(att.state).toBe('succeeded');
    expect(att.outputs).toEqual({ a: big('a'), b: big('b'), small: 1 });
    expect((await engine.getDeployment('big')).outputs).toEqual(att.outputs);
    const runner = (await eventsOf(engine, dep.id, 'runner_event')).map((e) => e.data);
    const markers = runner.filter((d) => d.lifeline === 'outputs_too_large');
    expect(markers).toEqual([
      {
        lifeline: 'outputs_too_large',
        bytes: expect.any(Number),
        limit: OUTPUTS_LIMIT,
        detail: expect.any(String),
      },
    ]);
    expect(markers[0].bytes).toBeGreaterThan(OUTPUTS_LIMIT);
    // The marker follows the refused event.
    expect(runner.findIndex((d) => d.lifeline === 'outputs_too_large')).toBe(
      runner.findIndex((d) => (d.output as { c?: string } | undefined)?.c !== undefined) + 1,
    );
    await expectConsistent(engine);
  }, 60_000);

  it('a non-object output is a marker, not a crash', async () => {
    const engine = await open(dialect);
    const dep = await engine.createDeployment(
      {
        name: 'bad',
        plan: 'out',
        params: { lines: [out([1, 2]), out('text'), out(null), out({ fine: 'yes' })] },
      },
      ADMIN,
    );
    const att = await ended(engine, (await engine.startDeploy('bad', {}, ADMIN)).id);
    expect(att.state).toBe('succeeded');
    expect(att.outputs).toEqual({ fine: 'yes' });
    const runner = (await eventsOf(engine, dep.id, 'runner_event')).map((e) => e.data);
    expect(runner.filter((d) => d.lifeline === 'output_invalid')).toHaveLength(3);
    expect((await engine.getDeployment('bad')).outputs).toEqual({ fine: 'yes' });
    await expectConsistent(engine);
  }, 60_000);

  it('the outputs and outputs_changed commit with the end or not at all', async () => {
    const engine = await open(dialect, { reap_interval: '200ms' });
    const db = engine.store.db;
    // Any insert of outputs_changed fails: the end's transaction must roll back whole.
    if (dialect === 'sqlite') {
      await sql`CREATE TRIGGER no_outputs BEFORE INSERT ON events WHEN NEW.type = 'outputs_changed'
        BEGIN SELECT RAISE(ABORT, 'refused by test'); END`.execute(db);
    } else {
      await sql`CREATE OR REPLACE FUNCTION no_outputs() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION 'refused by test'; END $$ LANGUAGE plpgsql`.execute(db);
      await sql`CREATE TRIGGER no_outputs BEFORE INSERT ON events FOR EACH ROW
        WHEN (NEW.type = 'outputs_changed') EXECUTE FUNCTION no_outputs()`.execute(db);
    }
    const dep = await engine.createDeployment(
      { name: 'tx', plan: 'out', params: { lines: [out({ a: 1 })] } },
      ADMIN,
    );
    const att = await engine.startDeploy('tx', {}, ADMIN);
    // The output is ingested (its own transaction), the end keeps failing.
    await waitFor(async () => (await engine.getAttempt(att.id)).outputs.a === 1, 'output ingested');
    await waitFor(
      async () =>
        (await db.selectFrom('events').select('seq').where('type', '=', 'runner_event').execute()).length > 0,
      'runner event',
    );
    // The plan has exited (its exit record is there): the end is due, and the safety pass (every
    // 200 ms) keeps trying it.
    const runDir = (
      await db.selectFrom('attempts').select('run_dir').where('id', '=', att.id).executeTakeFirstOrThrow()
    ).run_dir!;
    await waitFor(() => readExit(runDir), 'exit record');
    await new Promise((r) => setTimeout(r, 1000));
    const mid = await engine.getDeployment('tx');
    expect([mid.state, mid.outputs, (await engine.getAttempt(att.id)).state]).toEqual([
      'deploying',
      {},
      'running',
    ]);
    expect(await eventsOf(engine, dep.id, 'attempt_end')).toEqual([]);
    await expectConsistent(engine);

    await sql`DROP TRIGGER no_outputs${sql.raw(dialect === 'postgres' ? ' ON events' : '')}`.execute(db);
    const done = await ended(engine, att.id);
    expect(done.state).toBe('succeeded');
    expect((await engine.getDeployment('tx')).outputs).toEqual({ a: 1 });
    expect(await eventsOf(engine, dep.id, 'outputs_changed')).toHaveLength(1);
    await expectConsistent(engine);
  }, 60_000);
  it('retention prunes the runner events that published them, never outputs_changed: the fold still holds', async () => {
    const engine = await open(dialect, { retention: { logs: '30d' } });
    const dep = await engine.createDeployment(
      { name: 'old', plan: 'out', params: { lines: [out({ kept: 'yes' })] } },
      ADMIN,
    );
    const att = await ended(engine, (await engine.startDeploy('old', {}, ADMIN)).id);
    const db = engine.store.db;
    await db
      .updateTable('attempts')
      .set({ ended_at: new Date(Date.now() - 40 * 86_400_000).toISOString() })
      .where('id', '=', att.id)
      .execute();
    await engine.retention.pass();
    expect(await eventsOf(engine, dep.id, 'runner_event')).toEqual([]);
    expect((await eventsOf(engine, dep.id, 'outputs_changed')).map((e) => e.data)).toEqual([
      { outputs: { kept: 'yes' } },
    ]);
    expect((await engine.getDeployment('old')).outputs).toEqual({ kept: 'yes' });
    expect((await engine.getAttempt(att.id)).outputs).toEqual({ kept: 'yes' });
    await expectConsistent(engine);
  }, 60_000);
});
