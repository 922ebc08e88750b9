// Read-path bench (issue 8): list, label-filtered list and events pages at 100,000 deployments and
// 2,000,000 events, and the cost of a filtered stream's poll at 10,000 vs 1,000,000 events. The data is
// written by bulk SQL straight into a temp SQLite file (after the real migrations), then read through
// the real app (routes, service, store) with fastify's inject: everything but the socket.
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { buildApp } from '../src/http/app.ts';
import { openLifeline, type Lifeline } from '../src/lifecycle/engine.ts';
import { openStore } from '../src/store/open.ts';
import { median, percentile, type Row } from './stats.ts';

const TYPES = ['log_line', 'log_line', 'log_line', 'log_line', 'state_transition', 'attempt_start'];

/** A database of `deployments` deployments and `events` events, written in one transaction each. */
export async function buildDb(
  dir: string,
  deployments: number,
  events: number,
): Promise<{ url: string; ids: string[] }> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'lifeline.db');
  const url = `sqlite:${file}`;
  await (await openStore(url)).close(); // the real schema, migrations included
  const db = new SQLite(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const at = new Date().toISOString();
  const ids: string[] = [];
  const insDep = db.prepare(
    `insert into deployments (id, name, plan, params, labels, state, version, state_changed_at,
       current_attempt_id, created_at, updated_at, deleted_at)
     values (?, ?, 'ok', '{}', ?, 'ready', 1, ?, null, ?, ?, null)`,
  );
  const insLabel = db.prepare(`insert into deployment_labels (key, value, deployment_id) values (?, ?, ?)`);
  db.transaction(() => {
    for (let i = 0; i < deployments; i++) {
      // ULID-like: sortable by creation; the list walks ids in descending order.
      const id = `dep_${String(i).padStart(26, '0')}`;
      ids.push(id);
      const labels: Record<string, string> = { env: ['prod', 'staging', 'dev'][i % 3], team: `t${i % 100}` };
      if (i % 1000 === 7) labels.canary = 'yes';
      insDep.run(id, `d-${i}`, JSON.stringify(labels), at, at, at);
      for (const [k, v] of Object.entries(labels)) insLabel.run(k, v, id);
    }
  })();
  // Indexes are built after the rows (one sort each) rather than row by row: the same definitions,
  // read back from the schema the migrations made.
  const indexes = db
    .prepare(
      `select name, sql from sqlite_master where type = 'index' and tbl_name = 'events' and sql is not null`,
    )
    .all() as { name: string; sql: string }[];
  for (const i of indexes) db.exec(`drop index ${i.name}`);
  const insEvent = db.prepare(
    `insert into events (seq, type, at, deployment_id, attempt_id, data) values (?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (let seq = 1; seq <= events; seq++) {
      const dep = ids[seq % ids.length];
      const type = seq % 1000 === 0 ? 'deployment_deleted' : TYPES[seq % TYPES.length];
      const data =
        type === 'log_line'
          ? `{"stream":"stdout","text":"line ${seq} of some plan output"}`
          : `{"entity":"attempt","from":"running","to":"succeeded","trigger":"exit","reason":null,"actor":"bench"}`;
      insEvent.run(seq, type, at, dep, `att_${dep.slice(4)}_1`, data);
    }
    db.prepare(`update counters set value = ? where name = 'event_seq'`).run(events);
  })();
  for (const i of indexes) db.exec(i.sql);
  db.close();
  return { url, ids };
}

async function open(
  dir: string,
  url: string,
): Promise<{ engine: Lifeline; app: Awaited<ReturnType<typeof buildApp>> }> {
  const config = configFromObject(
    { data_dir: dir, db: url, plans: { ok: { deploy: ['/bin/true'], teardown: ['/bin/true'] } } },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  const app = await buildApp({ api: engine, config, logger: false });
  await app.ready();
  return { engine, app };
}

/** p50/p99 per round of `perRound` requests; medians over rounds. */
async function measure(
  app: Awaited<ReturnType<typeof buildApp>>,
  rounds: number,
  perRound: number,
  url: (i: number) => string,
): Promise<{ p50: number; p99: number }> {
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const xs: number[] = [];
    for (let i = 0; i < perRound; i++) {
      const t = performance.now();
      const res = await app.inject({ method: 'GET', url: url(r * perRound + i) });
      xs.push(performance.now() - t);
      if (res.statusCode !== 200) throw new Error(`${url(i)} answered ${res.statusCode}: ${res.body}`);
    }
    p50s.push(percentile(xs, 50));
    p99s.push(percentile(xs, 99));
  }
  return { p50: median(p50s), p99: median(p99s) };
}

export async function benchReads(tmp: string, quick: boolean): Promise<Row[]> {
  const deployments = quick ? 10_000 : 100_000;
  const events = quick ? 200_000 : 2_000_000;
  const rounds = quick ? 3 : 5;
  const per = quick ? 100 : 200;
  const rows: Row[] = [];
  const scale = `${deployments.toLocaleString('en')} dep., ${events.toLocaleString('en')} ev.`;

  let t = performance.now();
  const big = await buildDb(path.join(tmp, 'reads-big'), deployments, events);
  console.log(`  (built ${scale} in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  const { engine, app } = await open(path.join(tmp, 'reads-big'), big.url);
  const ids = big.ids;
  const pick = (i: number) => ids[(i * 7919) % ids.length];
  const target = 20;
  const add = (name: string, m: { p50: number; p99: number }, note = '') =>
    rows.push({ name: `${name} (${scale})`, p50: m.p50, p99: m.p99, target: `p99 < ${target} ms`, note });

  add('list page, newest', await measure(app, rounds, per, () => '/v1/deployments?limit=50'));
  add(
    'list page, deep cursor',
    await measure(app, rounds, per, (i) => `/v1/deployments?limit=50&cursor=${pick(i)}`),
  );
  add(
    'list, label env=prod (1/3)',
    await measure(app, rounds, per, () => '/v1/deployments?limit=50&label=env=prod'),
  );
  add(
    'list, label team=t7 (1/100)',
    await measure(app, rounds, per, (i) => `/v1/deployments?limit=50&label=team=t${i % 100}`),
  );
  add(
    'list, label canary=yes (1/1000)',
    await measure(app, rounds, per, () => '/v1/deployments?limit=50&label=canary=yes'),
  );
  add(
    'list, two labels',
    await measure(
      app,
      rounds,
      per,
      (i) => `/v1/deployments?limit=50&label=env=dev&label=team=t${(i % 33) * 3 + 2}`,
    ),
  );
  const after = (i: number) => (i * 104_729) % events;
  add(
    'events page, limit 100',
    await measure(app, rounds, per, (i) => `/v1/events?limit=100&after=${after(i)}`),
  );
  add(
    'events page, type=state_transition',
    await measure(app, rounds, per, (i) => `/v1/events?limit=100&type=state_transition&after=${after(i)}`),
  );
  add(
    'events page, 2 types',
    await measure(
      app,
      rounds,
      per,
      (i) => `/v1/events?limit=100&type=state_transition,attempt_start&after=${after(i)}`,
    ),
  );
  add(
    'events page, one deployment',
    await measure(app, rounds, per, (i) => `/v1/deployments/${pick(i)}/events?limit=100`),
  );
  await app.close();
  await engine.close();

  // A filtered stream's poll: the cursor is at the head (where the last poll left it), the type is rare
  // (its last match far behind). Flat means: the same at 10,000 and at 1,000,000 events.
  t = performance.now();
  const sizes = quick ? [10_000, 200_000] : [10_000, 1_000_000];
  for (const n of sizes) {
    const dir = path.join(tmp, `poll-${n}`);
    const small = await buildDb(dir, 1000, n);
    const o = await open(dir, small.url);
    const m = await measure(
      o.app,
      rounds,
      per,
      () => `/v1/events?limit=100&type=deployment_created&after=${n}`,
    );
    rows.push({
      name: `filtered stream poll at the head, ${n.toLocaleString('en')} ev.`,
      p50: m.p50,
      p99: m.p99,
      target: 'flat',
      note: '',
    });
    const from0 = await measure(
      o.app,
      rounds,
      per,
      () => `/v1/events?limit=100&type=deployment_deleted&after=0`,
    );
    rows.push({
      name: `filtered page from 0 (1/1000 match), ${n.toLocaleString('en')} ev.`,
      p50: from0.p50,
      p99: from0.p99,
      target: 'flat',
      note: '',
    });
    await o.app.close();
    await o.engine.close();
  }
  console.log(`  (poll dbs in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
  return rows;
}
