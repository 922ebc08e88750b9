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

/**
 * A deployment's stack never changes (a unit is created in its stack and stays there; ids are never
 * reused), so what was read once holds for good: events of a deployment learn their stack_id from here
 * without a statement per write. Bounded; the oldest entries go first.
 */
const stackOfDeployment = new Map<string, string | null>();
const STACK_CACHE_MAX = 50_000;

/** Remembers a deployment's stack as read from its row (never from a row this transaction may undo). */
export function rememberStackOf(deploymentId: string, stackId: string | null): void {
  if (stackOfDeployment.has(deploymentId)) return;
  if (stackOfDeployment.size >= STACK_CACHE_MAX) {
    stackOfDeployment.delete(stackOfDeployment.keys().next().value as string);
  }
  stackOfDeployment.set(deploymentId, stackId);
}

/**
 * The stack_id of each event: as given, else its deployment's (cached; the misses of one append read in
 * one statement), else null. Every event of a unit carries its stack (SPEC §12.5).
 */
async function stackIds(trx: Transaction<Database>, events: NewEvent[]): Promise<(string | null)[]> {
  const out: (string | null)[] = new Array(events.length);
  let missing: Set<string> | null = null;
  for (let j = 0; j < events.length; j++) {
    const e = events[j];
    if (e.stack_id !== undefined) out[j] = e.stack_id;
    else if (e.deployment_id === null) out[j] = null;
    else {
      const known = stackOfDeployment.get(e.deployment_id);
      if (known !== undefined) out[j] = known;
      else (missing ??= new Set()).add(e.deployment_id);
    }
  }
  if (missing === null) return out;
  const rows = await trx
    .selectFrom('deployments')
    .select(['id', 'stack_id'])
    .where('id', 'in', [...missing])
    .execute();
  const found = new Map<string, string | null>();
  for (const r of rows) {
    found.set(r.id, r.stack_id ?? null);
    rememberStackOf(r.id, r.stack_id ?? null);
  }
  for (let j = 0; j < events.length; j++) {
    if (out[j] === undefined) out[j] = found.get(events[j].deployment_id!) ?? null;
  }
  return out;
}

export async function insertEvents(
  trx: Transaction<Database>,
  events: NewEvent[],
  at: string,
  /** Per event: a log line's start offset in its attempt's log text (see store/logs.ts). */
  logOffsets?: (number | null)[],
): Promise<LifelineEvent[]> {
  if (events.length === 0) return [];
  const stacks = await stackIds(trx, events);
  if (trx.getExecutor().adapter instanceof PostgresAdapter)
    return appendPostgres(trx, events, at, stacks, logOffsets);
  const first = await reserveSeqs(trx, events.length);
  const stored: LifelineEvent[] = new Array(events.length);
  for (let i = 0; i < events.length; i += EVENTS_PER_INSERT) {
    const rows: EventsTable[] = [];
    for (let j = i; j < Math.min(i + EVENTS_PER_INSERT, events.length); j++) {
      const e = events[j];
      stored[j] = stamped(e, first + j, at, stacks[j]);
      rows.push({
        seq: first + j,
        type: e.type,
        at,
        deployment_id: e.deployment_id,
        attempt_id: e.attempt_id,
        data: JSON.stringify(e.data),
        log_offset: logOffsets?.[j] ?? null,
        stack_id: stacks[j],
      });
    }
    await insertRows(trx, 'events', rows);
  }
  return stored;
}

// Spelled out: on Node 20, `{ ...e, seq, at }` (a spread then new keys) costs microseconds per object.
// stack_id is served only where there is one: standalone events keep their shape.
function stamped(e: NewEvent, seq: number, at: string, stackId: string | null): LifelineEvent {
  const out: LifelineEvent = {
    seq,
    type: e.type,
    at,
    deployment_id: e.deployment_id,
    attempt_id: e.attempt_id,
    data: e.data,
  };
  if (stackId !== null) out.stack_id = stackId;
  return out;
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
    insert into "events" ("seq", "type", "at", "deployment_id", "attempt_id", "data", "log_offset", "stack_id")
    select c."value" - $1 + x.ord, x.type, $3, x.deployment_id, x.attempt_id, x.data, x.log_offset, x.stack_id
    from c, unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[])
      with ordinality as x(type, deployment_id, attempt_id, data, log_offset, stack_id, ord)
  )
  select "value" from c`,
);

async function appendPostgres(
  trx: Transaction<Database>,
  events: NewEvent[],
  at: string,
  stacks: (string | null)[],
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
    parameters: [n, EVENTS_CHANNEL, at, types, deps, atts, data, offs, stacks],
  });
  if (res.rows.length !== 1) throw new Error('the event_seq counter row is missing');
  const first = Number(res.rows[0].value) - n + 1;
  const stored: LifelineEvent[] = new Array(n);
  for (let j = 0; j < n; j++) stored[j] = stamped(events[j], first + j, at, stacks[j]);
  return stored;
}

export interface EventFilter {
  after: number;
  limit: number;
  deploymentId?: string;
  attemptId?: string;
  /** Events of a stack and of its units (events_stack_seq). */
  stackId?: string;
  types?: EventType[];
}

export async function selectEvents(db: Db, f: EventFilter & { upTo?: number }): Promise<LifelineEvent[]> {
  if (f.upTo === undefined && !f.deploymentId && !f.attemptId && !f.stackId && !f.types?.length) {
    // The live streams' read after every commit: compiled once (store/compiled.ts, issue 18).
    const r = await runCompiled(db, 'eventsAfter', [f.after, f.limit], () =>
      db.selectFrom('events').selectAll().where('seq', '>', f.after).orderBy('seq', 'asc').limit(f.limit),
    );
    return r.rows.map(toEvent);
  }
  let q = db.selectFrom('events').selectAll().where('seq', '>', f.after);
  if (f.upTo !== undefined) q = q.where('seq', '<=', f.upTo);
  if (f.deploymentId) q = q.where('deployment_id', '=', f.deploymentId);
  if (f.attemptId) q = q.where('attempt_id', '=', f.attemptId);
  if (f.stackId) q = q.where('stack_id', '=', f.stackId);
  if (f.types && f.types.length > 0) {
    // Beside a deployment or attempt, `type || ''` keeps the planner on that entity's (…, seq) index:
    // the (type, seq) one would walk every deployment's events of that type.
    const scoped = Boolean(f.deploymentId || f.attemptId || f.stackId);
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
  const scoped = Boolean(f.deploymentId || f.attemptId || f.stackId);
  if (!scoped && types.length === 0) {
    const items = await selectEvents(db, f);
    return { items, next_after: items.length > 0 ? items[items.length - 1].seq : f.after };
  }
  const head = await selectLastSeq(db);
  if (head <= f.after) return { items: [], next_after: f.after };
  let items: LifelineEvent[];
  if (types.length > 1 && !scoped) {
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
