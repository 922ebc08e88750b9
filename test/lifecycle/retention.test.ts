// Retention (SPEC §11) on both stores: a database of 25,000 log events (200,000 in the full mode), pruned by the background pruner
// while the API is read. Afterwards every deployment's fold still equals its state, the only missing seqs
// are archived log_line/runner_event ones below logs_pruned_before, the pruned attempts' logs read back
// byte for byte through the HTTP route (pages, ranges, tails, Lifeline-Next-Offset), phases too, and run
// dirs went only once their output was in the database. A batch that fails before commit loses nothing, a
// pruner stopped between batches resumes, and on Postgres two instances never prune at the same time.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { sql, type Kysely } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import type { BatchReport, RetentionHooks } from '../../src/lifecycle/retention.ts';
import { reserveSeqs } from '../../src/store/events.ts';
import type { Database } from '../../src/store/schema.ts';
import { DIALECTS, dbUrlFor, type TestDialect } from '../helpers/dialect.ts';
import { ADMIN, FIXTURES, fixturePlans, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';

/**
 * Clones of a 1,000-line attempt: 25,000 log events by default (still some 25 archive batches under the
 * API's reads), the 200,000 soak under LIFELINE_TEST_FULL=1.
 */
const CLONES = scaled(25, 200);
const LOG_EVENTS = CLONES * 1000;
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';

const DAY = 86_400_000;
const daysAgo = (n: number) => new Date(Date.now() - n * DAY).toISOString();
const RETENTION = { retention: { logs: '30d', run_dirs: '7d' } };

interface Node {
  engine: Lifeline;
  app: FastifyInstance;
  close(): Promise<void>;
}

const open: Node[] = [];
afterAll(async () => {
  for (const n of open) await n.close().catch(() => undefined);
});

async function node(
  dir: string,
  db: string,
  extra: Record<string, unknown> = {},
  hooks?: RetentionHooks,
  /** Told the engine before it starts (its first retention pass begins with start()). */
  opened?: (engine: Lifeline) => void,
) {
  const chatty = path.join(FIXTURES, 'chatty.sh');
  const config = configFromObject(
    {
      data_dir: dir,
      db,
      durable_commits: false,
      log_limit: { lines: 2500 },
      plans: {
        ...fixturePlans(),
        chatty: { deploy: [chatty], teardown: [chatty] },
        capped: { deploy: [chatty], teardown: [chatty], env: { LINES_COUNT: '3000' } },
        brief: { deploy: [chatty], teardown: [chatty], env: { LINES_COUNT: '100' } },
      },
      ...extra,
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: quietLogger(), retentionHooks: hooks });
  opened?.(engine);
  await engine.start();
  const app = await buildApp({ api: engine, config, logger: false });
  const n: Node = {
    engine,
    app,
    async close() {
      await app.close();
      await engine.close();
    },
  };
  open.push(n);
  return n;
}

async function deploy(engine: Lifeline, name: string, plan: string): Promise<{ dep: string; att: string }> {
  const dep = await engine.createDeployment({ name, plan }, ADMIN);
  const att = await engine.startDeploy(name, {}, ADMIN);
  await waitFor(async () => (await engine.getDeployment(name)).state === 'ready', `${name} ready`);
  await engine.settle();
  return { dep: dep.id, att: att.id };
}

/**
 * Copies a finished deployment `count` times through the store: its rows, its events (fresh seqs from
 * the counter, ids swapped) and its attempt's run dir. The rows are what the engine wrote, so the copies
 * have the real shape; it is only faster than running 200 plans.
 */
async function cloneDeployment(db: Kysely<Database>, depId: string, count: number): Promise<string[]> {
  const dep = await db
    .selectFrom('deployments')
    .selectAll()
    .where('id', '=', depId)
    .executeTakeFirstOrThrow();
  const atts = await db.selectFrom('attempts').selectAll().where('deployment_id', '=', depId).execute();
  const logs = await db
    .selectFrom('attempt_logs')
    .selectAll()
    .where(
      'attempt_id',
      'in',
      atts.map((a) => a.id),
    )
    .execute();
  expect(atts).toHaveLength(1);
  const evs = await db.selectFrom('events').select('seq').where('deployment_id', '=', depId).execute();
  const names: string[] = [];
  // Ten copies per transaction.
  for (let g = 0; g < count; g += 10) {
    await db.transaction().execute(async (trx) => {
      for (let i = g; i < Math.min(count, g + 10); i++) {
        const name = `clone-${i}`;
        const tag = `C${String(i).padStart(5, '0')}`;
        const swaps: [string, string][] = [
          [dep.id, `${dep.id.slice(0, 20)}${tag}`],
          ...atts.map((a): [string, string] => [a.id, `${a.id.slice(0, 20)}${tag}`]),
          [`"name":"${dep.name}"`, `"name":"${name}"`],
        ];
        const swap = <T extends string | null>(s: T): T =>
          (s === null ? s : swaps.reduce((t, [a, b]) => t.split(a).join(b), s as string)) as T;
        await trx
          .insertInto('deployments')
          .values({ ...dep, id: swap(dep.id), name, current_attempt_id: swap(dep.current_attempt_id) })
          .execute();
        for (const a of atts) {
          const runDir = a.run_dir ? path.join(path.dirname(a.run_dir), swap(a.id)) : null;
          if (a.run_dir) fs.cpSync(a.run_dir, runDir!, { recursive: true });
          await trx
            .insertInto('attempts')
            .values({ ...a, id: swap(a.id), deployment_id: swap(a.deployment_id), run_dir: runDir })
            .execute();
        }
        for (const l of logs)
          await trx
            .insertInto('attempt_logs')
            .values({ ...l, attempt_id: swap(l.attempt_id) })
            .execute();
        // The events copied inside the database: numbered from the counter in the template's order, ids and
        // name swapped in each event's JSON.
        const first = await reserveSeqs(trx, evs.length);
        const [[oldDep, newDep], [oldAtt, newAtt], [oldName, newName]] = swaps;
        await sql`
          insert into events (seq, type, at, deployment_id, attempt_id, data, log_offset)
          select cast(${first - 1} as bigint) + row_number() over (order by seq), type, at,
                 ${newDep}, case when attempt_id is null then null else ${newAtt} end,
                 replace(replace(replace(data, ${oldDep}, ${newDep}), ${oldAtt}, ${newAtt}), ${oldName}, ${newName}),
                 log_offset
          from events where deployment_id = ${depId} and (attempt_id is null or attempt_id = ${oldAtt})
        `.execute(trx);
        names.push(name);
      }
    });
  }
  return names;
}

/** Everything the log route answers for an attempt: pages, byte ranges (mid-line too), tails, past the end. */
async function probeLog(app: FastifyInstance, id: string): Promise<string[]> {
  const out: string[] = [];
  const get = async (q: string) => {
    const r = await app.inject({ method: 'GET', url: `/v1/attempts/${id}/log?${q}` });
    expect(r.statusCode, r.body).toBe(200);
    out.push(`${q} -> ${r.headers['lifeline-next-offset']} ${r.rawPayload.toString('base64')}`);
    return r;
  };
  for (let off = 0; ;) {
    const r = await get(`offset=${off}&limit=40000`);
    if (r.rawPayload.length === 0) break;
    off = Number(r.headers['lifeline-next-offset']);
  }
  await get('offset=1234&limit=777');
  await get('offset=5001&limit=100');
  await get('offset=3');
  await get('tail=7');
  await get('tail=1');
  await get('offset=999999999');
  return out;
}

async function probe(app: FastifyInstance, ids: string[]) {
  const out: Record<string, { log: string[]; phases: unknown }> = {};
  for (const id of ids) {
    const phases = await app.inject({ method: 'GET', url: `/v1/attempts/${id}/phases` });
    out[id] = { log: await probeLog(app, id), phases: JSON.parse(phases.body) };
  }
  return out;
}

/**
 * Latencies of a mix of API reads from a client that asks again 10 ms after each answer, at least `min`
 * of them and on until `more()` says stop.
 */
async function latencies(app: FastifyInstance, min: number, more: () => boolean, urls: string[]) {
  const times: number[] = [];
  while ((times.length < min || more()) && times.length < 20_000) {
    const t0 = performance.now();
    const r = await app.inject({ method: 'GET', url: urls[times.length % urls.length] });
    times.push(performance.now() - t0);
    expect(r.statusCode, r.body).toBe(200);
    await sleep(10);
  }
  return times;
}

const p99 = (t: number[]) => [...t].sort((a, b) => a - b)[Math.floor(0.99 * (t.length - 1))];

async function countOutput(db: Kysely<Database>, attemptId: string): Promise<number> {
  const r = await db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('attempt_id', '=', attemptId)
    .where('type', 'in', ['log_line', 'runner_event'])
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

async function expectInvariants(db: Kysely<Database>) {
  const s = await snapshotOf(db);
  expectStoreInvariants(s);
  expectAttemptHistories(s);
  return s;
}

describe.each(DIALECTS)('retention on %s', (dialect: TestDialect) => {
  it(`prunes ${LOG_EVENTS.toLocaleString('en')} log events in the background: folds, logs byte for byte, run dirs, p99`, async () => {
    const dir = tempDir('lifeline-retention-');
    const db = await dbUrlFor(dialect, dir);
    let a = await node(dir, db);
    const tpl = await deploy(a.engine, 'retention-template', 'chatty');
    const cap = await deploy(a.engine, 'capped-one', 'capped');
    const recent = await deploy(a.engine, 'recent-one', 'chatty');
    const t0 = performance.now();
    const clones = await cloneDeployment(a.engine.store.db, tpl.dep, CLONES);
    console.log(`[${dialect}] cloned in ${(performance.now() - t0).toFixed(0)} ms`);
    const cloneAtt = async (name: string) => (await a.engine.getDeployment(name)).current_attempt!.id;
    const sample = [
      tpl.att,
      cap.att,
      recent.att,
      await cloneAtt('clone-0'),
      await cloneAtt(`clone-${CLONES - 3}`),
    ];
    const logEvents = await a.engine.store.db
      .selectFrom('events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('type', '=', 'log_line')
      .executeTakeFirstOrThrow();
    expect(Number(logEvents.n)).toBeGreaterThanOrEqual(LOG_EVENTS);
    // Everything but `recent-one` ended 40 days ago.
    await a.engine.store.db
      .updateTable('attempts')
      .set({ ended_at: daysAgo(40) })
      .where('deployment_id', '!=', recent.dep)
      .execute();
    // One clone's stdout has bytes no event was made of: its run dir must stay.
    const unread = await cloneAtt('clone-5');
    const unreadDir = path.join(dir, 'attempts', unread);
    fs.appendFileSync(path.join(unreadDir, 'stdout'), 'never read into an event\n');
    await expectInvariants(a.engine.store.db);

    const before = await probe(a.app, sample);
    expect((before[tpl.att].phases as { items: unknown[] }).items).toHaveLength(2);
    const first = await a.app.inject({ method: 'GET', url: '/v1/events?limit=1' });
    expect(JSON.parse(first.body).logs_pruned_before).toBeNull();
    const urls = [
      `/v1/deployments/clone-${Math.floor(CLONES / 2)}`,
      '/v1/events?after=100000&limit=100',
      '/v1/deployments?limit=50',
      `/v1/attempts/${tpl.att}`,
    ];
    const idle = await latencies(a.app, 300, () => false, urls);
    await a.close();

    const reports: BatchReport[] = [];
    const tp = performance.now();
    a = await node(dir, db, RETENTION, { onBatch: (b) => void reports.push(b) });
    let pruning = true;
    const done = a.engine.retention.pass().finally(() => (pruning = false));
    const during = await latencies(a.app, 50, () => pruning, urls);
    await done;
    const t1 = performance.now();
    console.log(
      `[${dialect}] API p99 idle ${p99(idle).toFixed(1)} ms (${idle.length} requests), during pruning ${p99(during).toFixed(1)} ms (${during.length} requests); ${reports.length} batches in ${(t1 - tp).toFixed(0)} ms`,
    );
    const kinds = ['archive', 'delete', 'rest', 'run_dir'] as const;
    console.log(
      `[${dialect}] batch time: ` +
        kinds
          .map((k) => {
            const t = reports.filter((r) => r.kind === k).map((r) => r.endedAt - r.startedAt);
            return `${k} ${t.length} × ${(t.reduce((x, y) => x + y, 0) / Math.max(1, t.length)).toFixed(1)} ms`;
          })
          .join(', '),
    );
    expect(p99(during)).toBeLessThanOrEqual(2 * p99(idle) + 50);

    // The fold of every deployment equals its state; the only missing seqs are archived ones.
    const s = await expectInvariants(a.engine.store.db);
    expect(s.archived!.size).toBeGreaterThanOrEqual(LOG_EVENTS);
    const page = JSON.parse((await a.app.inject({ method: 'GET', url: '/v1/events?limit=1' })).body);
    let top = 0;
    for (const seq of s.archived!.keys()) top = Math.max(top, seq);
    expect(page.logs_pruned_before).toBe(top + 1);
    expect(s.prunedBefore).toBe(page.logs_pruned_before);
    // Pruned attempts kept no log_line/runner_event; the recent one kept all of its.
    for (const id of [tpl.att, cap.att, await cloneAtt(`clone-${CLONES - 1}`)])
      expect(await countOutput(a.engine.store.db, id)).toBe(0);
    expect(await countOutput(a.engine.store.db, recent.att)).toBeGreaterThan(1000);

    // Byte for byte, as before pruning; phases too.
    expect(await probe(a.app, sample)).toEqual(before);

    // Readers page over the gaps: every remaining event, in order, no waiting.
    const seen: number[] = [];
    for (let after = 0; ;) {
      const r = JSON.parse(
        (await a.app.inject({ method: 'GET', url: `/v1/events?after=${after}&limit=1000` })).body,
      );
      if (r.items.length === 0) break;
      seen.push(...r.items.map((e: { seq: number }) => e.seq));
      after = r.next_after;
    }
    expect(seen).toEqual(s.events.map((e) => Number(e.seq)));

    // Run dirs: gone for the old attempts, each after its output was archived (the capped one's raw rest
    // copied first); kept for the recent one and for the one with unread output.
    const runDir = (id: string) => path.join(dir, 'attempts', id);
    for (const id of [tpl.att, cap.att, await cloneAtt('clone-3')])
      expect(fs.existsSync(runDir(id))).toBe(false);
    expect(fs.existsSync(runDir(recent.att))).toBe(true);
    expect(fs.existsSync(unreadDir)).toBe(true);
    const removed = reports.filter((r) => r.kind === 'run_dir');
    expect(removed.length).toBe(CLONES + 1);
    for (const r of removed) {
      const archivedAt = reports.findIndex((x) => x.kind === 'archive' && x.attemptId === r.attemptId);
      expect(archivedAt).toBeGreaterThanOrEqual(0);
      expect(archivedAt).toBeLessThan(reports.indexOf(r));
    }
    expect(reports.findIndex((r) => r.kind === 'rest' && r.attemptId === cap.att)).toBeLessThan(
      reports.findIndex((r) => r.kind === 'run_dir' && r.attemptId === cap.att),
    );
    const rows = await a.engine.store.db.selectFrom('attempts').select(['id', 'run_dir']).execute();
    expect(
      rows
        .filter((r) => r.run_dir !== null)
        .map((r) => r.id)
        .sort(),
    ).toEqual([recent.att, unread].sort());

    const size = await sql<{ text: number; log: number; events: number }>`
      select sum(log_bytes) as text, sum(length(log)) as log, sum(length(events)) as events from log_archive`.execute(
      a.engine.store.db,
    );
    const z = size.rows[0];
    console.log(
      `[${dialect}] archive: ${s.archived!.size} events, log text ${Number(z.text)} bytes kept as ${Number(z.log)} (gzip) + ${Number(z.events)} bytes of event records`,
    );
    console.log(`[${dialect}] checks after pruning took ${(performance.now() - t1).toFixed(0)} ms`);
    // A second pass finds nothing to do.
    const n = reports.length;
    await a.engine.retention.pass();
    expect(reports.length).toBe(n);
    expect(clones).toHaveLength(CLONES);
    await a.close();
  }, 240_000);

  it('a batch that fails before commit loses nothing; a pruner stopped between batches resumes', async () => {
    const dir = tempDir('lifeline-retention-crash-');
    const db = await dbUrlFor(dialect, dir);
    let a = await node(dir, db);
    const tpl = await deploy(a.engine, 'retention-template', 'chatty');
    const cap = await deploy(a.engine, 'capped-one', 'capped');
    await cloneDeployment(a.engine.store.db, tpl.dep, 20);
    const victim = (await a.engine.getDeployment('clone-0')).current_attempt!.id;
    const d = a.engine.store.db;
    await d
      .updateTable('attempts')
      .set({ ended_at: daysAgo(40) })
      .execute();
    // Candidates go oldest first: the capped attempt (more events than one batch), then the victim.
    await d
      .updateTable('attempts')
      .set({ ended_at: daysAgo(50) })
      .where('id', '=', cap.att)
      .execute();
    await d
      .updateTable('attempts')
      .set({ ended_at: daysAgo(45) })
      .where('id', '=', victim)
      .execute();
    const ids = [tpl.att, cap.att, victim];
    const before = await probe(a.app, ids);
    await a.close();

    // Stopped right after the capped attempt's first batch: archived, its events partly deleted.
    let engine: Lifeline | null = null;
    const stopper = await node(
      dir,
      db,
      { retention: { logs: '30d' } },
      {
        onBatch: (b) => {
          if (b.kind === 'archive' && b.attemptId === cap.att) void engine!.retention.close();
        },
      },
      (e) => (engine = e),
    );
    await stopper.engine.retention.pass();
    const left = await countOutput(stopper.engine.store.db, cap.att);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(2600);
    await expectInvariants(stopper.engine.store.db);
    expect(await probe(stopper.app, ids)).toEqual(before);
    await stopper.close();

    // Fails inside the victim's transaction, after its writes: rolled back whole.
    a = await node(
      dir,
      db,
      { retention: { logs: '30d' } },
      {
        beforeCommit: (id) => {
          if (id === victim) throw new Error('crash before commit');
        },
      },
    );
    await expect(a.engine.retention.pass()).rejects.toThrow('crash before commit');
    expect(await countOutput(a.engine.store.db, cap.att)).toBe(0);
    expect(await countOutput(a.engine.store.db, victim)).toBeGreaterThan(1000);
    const row = await a.engine.store.db
      .selectFrom('log_archive')
      .select('pruned_at')
      .where('attempt_id', '=', victim)
      .executeTakeFirst();
    expect(row?.pruned_at ?? null).toBeNull();
    await expectInvariants(a.engine.store.db);
    expect(await probe(a.app, ids)).toEqual(before);
    await a.close();

    // A healthy pruner finishes the job.
    a = await node(dir, db, { retention: { logs: '30d' } });
    await a.engine.retention.pass();
    for (const id of ids) expect(await countOutput(a.engine.store.db, id)).toBe(0);
    const s = await expectInvariants(a.engine.store.db);
    expect(s.events.some((e) => e.type === 'log_line')).toBe(false);
    expect(await probe(a.app, ids)).toEqual(before);
    await a.close();
  }, 180_000);
});

describe('retention with two instances on Postgres', () => {
  it('never prunes on both at once', async () => {
    const dirA = tempDir('lifeline-retention-a-');
    const dirB = tempDir('lifeline-retention-b-');
    const db = await dbUrlFor('postgres', dirA);
    let a = await node(dirA, db);
    // Attempts of 100 lines: each is still one archive batch (and one run dir), as many batches as with
    // 1,000 lines, each a tenth of the work (the pruner rests as long as a batch took, so the two
    // instances' batches and rests keep their proportions).
    const tpl = await deploy(a.engine, 'retention-template', 'brief');
    await cloneDeployment(a.engine.store.db, tpl.dep, 60);
    await a.engine.store.db
      .updateTable('attempts')
      .set({ ended_at: daysAgo(40) })
      .execute();
    const ids = [tpl.att, (await a.engine.getDeployment('clone-33')).current_attempt!.id];
    const before = await probe(a.app, ids);
    await a.close();

    const reports: BatchReport[] = [];
    // The holder of the lease stalls after its 10th batch until its lease (1 s) ran out and the other
    // instance took it over; once awake, it finds it no longer holds the lease and stops.
    let store: Kysely<Database> | null = null;
    const leaseOwner = async () =>
      (await store!.selectFrom('retention').select('lease_owner').executeTakeFirst())?.lease_owner;
    const hooks = {
      onBatch: async (r: BatchReport) => {
        reports.push(r);
        if (reports.filter((x) => x.kind === 'archive').length === 10)
          await waitFor(
            async () => (await leaseOwner()) !== r.instance,
            'the other instance taking over',
            60_000,
          );
      },
    };
    const extra = { ...RETENTION, lease_ttl: '1s' };
    const [first, b] = await Promise.all([
      node(dirA, db, extra, hooks, (e) => (store = e.store.db)),
      node(dirB, db, extra, hooks),
    ]);
    a = first;
    const left = async () => {
      const r = await a.engine.store.db
        .selectFrom('events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('type', '=', 'log_line')
        .executeTakeFirstOrThrow();
      return Number(r.n);
    };
    // Both keep running passes side by side until every log is pruned.
    let finished = false;
    const loop = async (n: Node) => {
      while (!finished) {
        await n.engine.retention.pass();
        await sleep(50);
      }
    };
    const loops = Promise.all([loop(a), loop(b)]);
    await waitFor(async () => (await left()) === 0, 'every log pruned', 120_000);
    finished = true;
    await loops;
    const by = (id: string) => reports.filter((r) => r.kind === 'archive' && r.instance === id).length;
    console.log(
      `[postgres] two instances: ${by(a.engine.instanceId)} and ${by(b.engine.instanceId)} attempts archived`,
    );
    expect(by(a.engine.instanceId)).toBeGreaterThan(0);
    expect(by(b.engine.instanceId)).toBeGreaterThan(0);
    const leased = reports.filter((r) => r.kind === 'archive' || r.kind === 'delete');
    expect(leased.length).toBeGreaterThanOrEqual(61);
    for (const x of leased)
      for (const y of leased)
        if (x.instance !== y.instance)
          expect(x.endedAt <= y.startedAt || y.endedAt <= x.startedAt, 'two instances pruned at once').toBe(
            true,
          );
    // Each run dir is removed by the instance that owns it.
    const owner = a.engine.instanceId;
    expect(reports.filter((r) => r.kind === 'run_dir').every((r) => r.instance === owner)).toBe(true);
    // Each attempt archived once.
    const archivedIds = leased.filter((r) => r.kind === 'archive').map((r) => r.attemptId);
    expect(new Set(archivedIds).size).toBe(archivedIds.length);
    await expectInvariants(a.engine.store.db);
    expect(await probe(a.app, ids)).toEqual(before);
  }, 240_000);
});
