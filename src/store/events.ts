// The event log: one global, gap-free seq taken from a counter row inside the writing transaction.
import { CompiledQuery, PostgresAdapter, sql, type Kysely, type Transaction } from 'kysely';
import type { EventType, LifelineEvent, NewEvent } from '../domain/types.ts';
import type { Database, EventsTable } from './schema.ts';
import { insertRows, runCompiled } from './compiled.ts';
import { toEvent } from './rows.ts';
import { EVENTS_CHANNEL } from './listen.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Reserves `n` seqs (SQLite; Postgres appends in one statement, appendPostgres below); the counter row
 * lock orders appends by commit. Returns the first. `pg_notify` is a no-op function on SQLite (open.ts);
 * on Postgres it queues `NOTIFY lifeline_events, '<last seq>'` (delivered on commit; store/listen.ts).
 */
export async function reserveSeqs(trx: Transaction<Database>, n: number): Promise<number> {
  const res = await runCompiled(trx, 'reserveSeqs', [n, 'event_seq', EVENTS_CHANNEL], () =>
    trx
      .updateTable('counters')
      .set((eb) => ({ value: eb('value', '+', n) }))
      .where('name', '=', 'event_seq')
      .returning(['value', sql<unknown>`pg_notify(${EVENTS_CHANNEL}, cast(value as text))`.as('notified')]),
  );
  if (res.rows.length !== 1) throw new Error('the event_seq counter row is missing');
  return Number(res.rows[0].value) - n + 1;
}

/** SQLite caps bound parameters per statement; 100 events of 7 columns stay well below. */
const EVENTS_PER_INSERT = 100;

export async function insertEvents(
  trx: Transaction<Database>,
  events: NewEvent[],
  at: string,
  /** Per event: a log line's start offset in its attempt's log text (see store/logs.ts). */
  logOffsets?: (number | null)[],
): Promise<LifelineEvent[]> {
  if (events.length === 0) return [];
  if (trx.getExecutor().adapter instanceof PostgresAdapter)
    return appendPostgres(trx, events, at, logOffsets);
  const first = await reserveSeqs(trx, events.length);
  const stored: LifelineEvent[] = new Array(events.length);
  for (let i = 0; i < events.length; i += EVENTS_PER_INSERT) {
    const rows: EventsTable[] = [];
    for (let j = i; j < Math.min(i + EVENTS_PER_INSERT, events.length); j++) {
      const e = events[j];
      stored[j] = stamped(e, first + j, at);
      rows.push({
        seq: first + j,
        type: e.type,
        at,
        deployment_id: e.deployment_id,
        attempt_id: e.attempt_id,
        data: JSON.stringify(e.data),
        log_offset: logOffsets?.[j] ?? null,
      });
    }
    await insertRows(trx, 'events', rows);
  }
  return stored;
}

// Spelled out: on Node 20, `{ ...e, seq, at }` (a spread then new keys) costs microseconds per object.
function stamped(e: NewEvent, seq: number, at: string): LifelineEvent {
  return { seq, type: e.type, at, deployment_id: e.deployment_id, attempt_id: e.attempt_id, data: e.data };
}

/**
 * Postgres: the counter update, its NOTIFY and the events insert in ONE statement, and that statement
 * the last before COMMIT (every caller appends last). The counter row lock, which orders appends by
 * commit, is then held for one statement and the commit, not across a further round trip and event-loop
 * turn (docs/scaling.md#the-event-counter). The events go as arrays: one statement shape for any count.
 */
const APPEND_PG = CompiledQuery.raw(
  `with c as (
    update "counters" set "value" = "value" + $1 where "name" = 'event_seq'
    returning "value", pg_notify($2, cast("value" as text)) as "notified"
  ), e as (
    insert into "events" ("seq", "type", "at", "deployment_id", "attempt_id", "data", "log_offset")
    select c."value" - $1 + x.ord, x.type, $3, x.deployment_id, x.attempt_id, x.data, x.log_offset
    from c, unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[])
      with ordinality as x(type, deployment_id, attempt_id, data, log_offset, ord)
  )
  select "value" from c`,
);

async function appendPostgres(
  trx: Transaction<Database>,
  events: NewEvent[],
  at: string,
  logOffsets?: (number | null)[],
): Promise<LifelineEvent[]> {
  const n = events.length;
  const types: string[] = new Array(n);
  const deps: (string | null)[] = new Array(n);
  const atts: (string | null)[] = new Array(n);
  const data: string[] = new Array(n);
  const offs: (number | null)[] = new Array(n);
  for (let j = 0; j < n; j++) {
    const e = events[j];
    types[j] = e.type;
    deps[j] = e.deployment_id;
    atts[j] = e.attempt_id;
    data[j] = JSON.stringify(e.data);
    offs[j] = logOffsets?.[j] ?? null;
  }
  const res = await trx.executeQuery<{ value: string | number }>({
    ...APPEND_PG,
    parameters: [n, EVENTS_CHANNEL, at, types, deps, atts, data, offs],
  });
  if (res.rows.length !== 1) throw new Error('the event_seq counter row is missing');
  const first = Number(res.rows[0].value) - n + 1;
  const stored: LifelineEvent[] = new Array(n);
  for (let j = 0; j < n; j++) stored[j] = stamped(events[j], first + j, at);
  return stored;
}

export interface EventFilter {
  after: number;
  limit: number;
  deploymentId?: string;
  attemptId?: string;
  types?: EventType[];
}

export async function selectEvents(db: Db, f: EventFilter & { upTo?: number }): Promise<LifelineEvent[]> {
  let q = db.selectFrom('events').selectAll().where('seq', '>', f.after);
  if (f.upTo !== undefined) q = q.where('seq', '<=', f.upTo);
  if (f.deploymentId) q = q.where('deployment_id', '=', f.deploymentId);
  if (f.attemptId) q = q.where('attempt_id', '=', f.attemptId);
  if (f.types && f.types.length > 0) {
    // Beside a deployment or attempt, `type || ''` keeps the planner on that entity's (…, seq) index:
    // the (type, seq) one would walk every deployment's events of that type.
    const scoped = Boolean(f.deploymentId || f.attemptId);
    q = scoped ? q.where(sql<string>`(type || '')`, 'in', f.types) : q.where('type', 'in', f.types);
  }
  const rows = await q.orderBy('seq', 'asc').limit(f.limit).execute();
  return rows.map(toEvent);
}

export interface EventPage {
  items: LifelineEvent[];
  /** The highest seq this read covered, matched or not: where the next read starts. */
  next_after: number;
}

/**
 * A page of events after `f.after`, and how far it looked. Unfiltered, that is the last item. Filtered,
 * the head is read first: seqs are taken in commit order (the counter row), so every event up to a
 * committed head is visible, and a short page means nothing else matched up to it. Moving the cursor
 * there is what keeps a filtered reader from rescanning what it already passed.
 */
export async function selectEventPage(db: Db, f: EventFilter): Promise<EventPage> {
  const types = f.types ?? [];
  if (!f.deploymentId && !f.attemptId && types.length === 0) {
    const items = await selectEvents(db, f);
    return { items, next_after: items.length > 0 ? items[items.length - 1].seq : f.after };
  }
  const head = await selectLastSeq(db);
  if (head <= f.after) return { items: [], next_after: f.after };
  let items: LifelineEvent[];
  if (types.length > 1 && !f.deploymentId && !f.attemptId) {
    // One ordered range of the (type, seq) index per type, merged: an IN list would make the planner
    // sort every match after `after` (or walk the whole table) to find the first `limit`.
    const parts = await Promise.all(types.map((t) => selectEvents(db, { ...f, types: [t], upTo: head })));
    items = parts
      .flat()
      .sort((a, b) => a.seq - b.seq)
      .slice(0, f.limit);
  } else {
    items = await selectEvents(db, { ...f, upTo: head });
  }
  // A full page stops at its last item (each per-type part holds at least that far); a short one saw all.
  return { items, next_after: items.length === f.limit ? items[items.length - 1].seq : head };
}

export async function selectLastSeq(db: Db): Promise<number> {
  const row = await db
    .selectFrom('counters')
    .select('value')
    .where('name', '=', 'event_seq')
    .executeTakeFirstOrThrow();
  return Number(row.value);
}

export async function selectDeploymentTransitions(db: Db, deploymentId: string): Promise<LifelineEvent[]> {
  const rows = await db
    .selectFrom('events')
    .selectAll()
    .where('deployment_id', '=', deploymentId)
    .where('type', '=', 'state_transition')
    .orderBy('seq', 'asc')
    .execute();
  return rows.map(toEvent).filter((e) => e.data.entity === 'deployment');
}
