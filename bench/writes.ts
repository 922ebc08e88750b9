// Write path (issue 8), side by side, rounds interleaved, medians reported:
//   create     POST /v1/deployments (the real app over a socket, SQLite synchronous=FULL) vs a bare Fastify
//              route doing the same durable insert (row, counter, events) on the same schema, 16 clients
//   transition applyTransition inside transact() vs the same SQL statements issued directly on the driver:
//              SQLite (one writer) and Postgres (16 clients, a pool of 16 each side)
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import Fastify from 'fastify';
import pg from 'pg';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { buildApp } from '../src/http/app.ts';
import { newDeploymentId, nowIso } from '../src/lifecycle/ids.ts';
import { openLifeline } from '../src/lifecycle/engine.ts';
import { EventBus } from '../src/lifecycle/event-bus.ts';
import { transact } from '../src/lifecycle/tx.ts';
import { openStore, type Store } from '../src/store/open.ts';
import type { DeploymentsTable } from '../src/store/schema.ts';
import { applyTransition } from '../src/store/transition.ts';
import { pgDatabase, pgNote } from './pg.ts';
import { addRow, section } from './report.ts';
import { median } from './stats.ts';

const CLIENTS = 16;
let serial = 0;

function deploymentRow(): DeploymentsTable {
  const at = nowIso();
  return {
    id: newDeploymentId(),
    name: `w-${process.pid}-${serial++}`,
    plan: 'ok',
    params: '{}',
    // As the create command stores it (the plan's secret param names): both sides write the same row.
    secret_params: '[]',
    labels: '{}',
    state: 'pending',
    version: 1,
    state_changed_at: at,
    current_attempt_id: null,
    created_at: at,
    updated_at: at,
    deleted_at: null,
  };
}

/** The two events a create appends, as stored. */
function createdEvents(row: DeploymentsTable, actor: string) {
  return [
    {
      type: 'deployment_created',
      attempt_id: null,
      data: JSON.stringify({ name: row.name, plan: row.plan, params: {}, labels: {} }),
    },
    {
      type: 'state_transition',
      attempt_id: null,
      data: JSON.stringify({
        entity: 'deployment',
        id: row.id,
        from: null,
        to: 'pending',
        trigger: 'created',
        reason: null,
        actor,
        version: 1,
      }),
    },
  ];
}

/** `n` calls of `one`, `clients` at a time; returns calls/s. */
async function rate(n: number, clients: number, one: () => Promise<void>): Promise<number> {
  let left = n;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (left > 0) {
        left--;
        await one();
      }
    }),
  );
  return n / ((performance.now() - t) / 1000);
}

async function sideBySide(
  rounds: number,
  a: () => Promise<number>,
  b: () => Promise<number>,
): Promise<{ a: number; b: number; ratios: number[] }> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate who goes first, so a drift in machine load does not favour one side.
    if (r % 2 === 0) {
      as.push(await a());
      bs.push(await b());
    } else {
      bs.push(await b());
      as.push(await a());
    }
  }
  return { a: median(as), b: median(bs), ratios: as.map((x, i) => x / bs[i]) };
}

const SQLITE_INSERTS = {
  dep: `insert into deployments (id, name, plan, params, secret_params, labels, state, version, state_changed_at,
          current_attempt_id, created_at, updated_at, deleted_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  counter: `update counters set value = value + ? where name = 'event_seq' returning value`,
  events: `insert into events (seq, type, at, deployment_id, attempt_id, data, log_offset)
          values (?, ?, ?, ?, ?, ?, null), (?, ?, ?, ?, ?, ?, null)`,
};

/** The same statements as a create's transaction, on a bare better-sqlite3 handle (synchronous=FULL). */
function bareSqlite(file: string) {
  const db = new SQLite(file, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  const dep = db.prepare(SQLITE_INSERTS.dep);
  const counter = db.prepare(SQLITE_INSERTS.counter);
  const ev = db.prepare(SQLITE_INSERTS.events);
  const write = db.transaction((row: DeploymentsTable) => {
    dep.run(Object.values(row));
    const last = Number((counter.get(2) as { value: number }).value);
    const [a, b] = createdEvents(row, 'bench');
    ev.run(
      last - 1,
      a.type,
      row.created_at,
      row.id,
      null,
      a.data,
      last,
      b.type,
      row.created_at,
      row.id,
      null,
      b.data,
    );
    return last;
  });
  return { db, write };
}

async function benchCreate(tmp: string, quick: boolean): Promise<void> {
  const n = quick ? 200 : 800;
  const rounds = quick ? 3 : 5;
  const dir = path.join(tmp, 'writes-create');
  const config = configFromObject(
    {
      data_dir: dir,
      db: `sqlite:${path.join(dir, 'lifeline.db')}`,
      plans: { ok: { deploy: ['/bin/true'], teardown: ['/bin/true'] } },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  const app = await buildApp({ api: engine, config, logger: false });
  const ours = await app.listen({ host: '127.0.0.1', port: 0 });

  const bareDir = path.join(tmp, 'writes-bare');
  await (await openStore(`sqlite:${path.join(bareDir, 'bare.db')}`)).close(); // the same schema
  const bare = bareSqlite(path.join(bareDir, 'bare.db'));
  const plain = Fastify({ logger: false });
  plain.post('/deployments', async (req, reply) => {
    const body = req.body as { name?: unknown; plan?: unknown };
    if (typeof body?.name !== 'string' || typeof body.plan !== 'string') return reply.code(400).send();
    const row = { ...deploymentRow(), name: body.name, plan: body.plan };
    bare.write(row);
    return reply.code(201).send({ id: row.id, name: row.name, plan: row.plan, state: row.state, version: 1 });
  });
  const theirs = await plain.listen({ host: '127.0.0.1', port: 0 });

  const post = async (url: string) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `c-${serial++}`, plan: 'ok' }),
    });
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`${url} answered ${res.status}`);
  };
  await rate(CLIENTS * 2, CLIENTS, () => post(`${ours}/v1/deployments`)); // warm up
  await rate(CLIENTS * 2, CLIENTS, () => post(`${theirs}/deployments`));
  const r = await sideBySide(
    rounds,
    () => rate(n, CLIENTS, () => post(`${ours}/v1/deployments`)),
    () => rate(n, CLIENTS, () => post(`${theirs}/deployments`)),
  );
  const s = writeSection();
  addRow(s, [
    `POST /v1/deployments vs bare Fastify route, SQLite FULL, ${CLIENTS} clients`,
    r.a,
    r.b,
    median(r.ratios),
    '≥ 0.8',
  ]);
  await app.close();
  await plain.close();
  bare.db.close();
  await engine.close();
}

function writeSection() {
  const s = section('Write path (side by side, medians over interleaved rounds)', [
    'scenario',
    'ours /s',
    'baseline /s',
    'ratio (median of per-round ratios)',
    'target',
  ]);
  if (s.notes.length === 0)
    s.notes.push(
      'create: the real app (routes, hooks, validation, idempotency check, presentation) over a real socket, 16 keep-alive clients, vs a bare Fastify route that inserts the same row (secret_params included), bumps the same counter and inserts the same two events in one better-sqlite3 transaction on the same schema. On both sides the unique index on live names is the name check.',
      'transition: the create transition (deployment row, counter, deployment_created + state_transition) through transact() + applyTransition() (Kysely) vs the same statements on the bare driver (prepared better-sqlite3 statements; pg with BEGIN/COMMIT).',
    );
  return s;
}

async function benchTransitionSqlite(tmp: string, quick: boolean): Promise<void> {
  const n = quick ? 300 : 1000;
  const rounds = quick ? 3 : 5;
  const store: Store = await openStore(`sqlite:${path.join(tmp, 'writes-tx', 'ours.db')}`);
  const bus = new EventBus();
  await (await openStore(`sqlite:${path.join(tmp, 'writes-tx', 'bare.db')}`)).close();
  const bare = bareSqlite(path.join(tmp, 'writes-tx', 'bare.db'));
  const ours = () => oursCreate(store, bus).then(() => undefined);
  const r = await sideBySide(
    rounds,
    () => rate(n, 1, ours),
    () => rate(n, 1, async () => void bare.write(deploymentRow())),
  );
  addRow(writeSection(), [
    'transition write path, SQLite FULL, one writer',
    r.a,
    r.b,
    median(r.ratios),
    '≥ 0.8',
  ]);
  bare.db.close();
  await store.close();
}

function oursCreate(store: Store, bus: EventBus): Promise<unknown> {
  const row = deploymentRow();
  return transact(store, bus, async (trx) => {
    const events = await applyTransition(trx, {
      at: row.created_at,
      actor: 'bench',
      deployment: {
        id: row.id,
        change: { from: null, to: 'pending', trigger: 'created', reason: null },
        insert: row,
      },
      eventsBefore: [
        {
          type: 'deployment_created',
          deployment_id: row.id,
          attempt_id: null,
          data: { name: row.name, plan: row.plan, params: {}, labels: {} },
        },
      ],
    });
    return { result: null, events };
  });
}

async function benchTransitionPg(quick: boolean): Promise<void> {
  const n = quick ? 400 : 1500;
  const rounds = quick ? 3 : 5;
  const store = await openStore(await pgDatabase('bench_tx_ours'), {
    pool: {
      poolMax: CLIENTS,
      connectTimeoutMs: 30_000,
      statementTimeoutMs: 30_000,
      idleInTransactionTimeoutMs: 30_000,
    },
  });
  const bus = new EventBus();
  const bareUrl = await pgDatabase('bench_tx_bare');
  await (await openStore(bareUrl)).close();
  const pool = new pg.Pool({ connectionString: bareUrl, max: CLIENTS });
  const bare = async () => {
    const row = deploymentRow();
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(
        `insert into deployments (id, name, plan, params, secret_params, labels, state, version, state_changed_at,
          current_attempt_id, created_at, updated_at, deleted_at) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
        Object.values(row),
      );
      const last = Number(
        (await c.query(`update counters set value = value + 2 where name = 'event_seq' returning value`))
          .rows[0].value,
      );
      const [a, b] = createdEvents(row, 'bench');
      await c.query(
        `insert into events (seq, type, at, deployment_id, attempt_id, data, log_offset)
          values ($1,$2,$3,$4,$5,$6,null), ($7,$8,$9,$10,$11,$12,null)`,
        [
          last - 1,
          a.type,
          row.created_at,
          row.id,
          null,
          a.data,
          last,
          b.type,
          row.created_at,
          row.id,
          null,
          b.data,
        ],
      );
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  };
  await rate(CLIENTS * 4, CLIENTS, () => oursCreate(store, bus).then(() => undefined)); // warm up pools
  await rate(CLIENTS * 4, CLIENTS, bare);
  const r = await sideBySide(
    rounds,
    () => rate(n, CLIENTS, () => oursCreate(store, bus).then(() => undefined)),
    () => rate(n, CLIENTS, bare),
  );
  addRow(writeSection(), [
    `transition write path, Postgres, ${CLIENTS} clients`,
    r.a,
    r.b,
    median(r.ratios),
    '≥ 0.7',
  ]);
  const s = writeSection();
  if (!s.notes.some((x) => x.startsWith('Postgres'))) s.notes.push(pgNote() + '.');
  await pool.end();
  await store.close();
}

export async function benchWrites(tmp: string, quick: boolean, which: string | undefined): Promise<void> {
  if (!which || which === 'writes' || which === 'create') await benchCreate(tmp, quick);
  if (!which || which === 'writes' || which === 'transition') {
    await benchTransitionSqlite(tmp, quick);
    await benchTransitionPg(quick);
  }
}
