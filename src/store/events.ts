// The event log: one global, gap-free seq taken from a counter row inside the writing transaction.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { EventType, LifelineEvent, NewEvent } from '../domain/types.ts';
import type { Database, EventsTable } from './schema.ts';
import { insertRows, runCompiled } from './compiled.ts';
import { toEvent } from './rows.ts';
import { EVENTS_CHANNEL } from './listen.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Reserves `n` seqs; the counter row lock orders appends by commit. Returns the first. On Postgres the
 * same statement queues `NOTIFY lifeline_events, '<last seq>'` (delivered on commit, never on rollback;
 * store/listen.ts), saving a round trip per write; on SQLite `pg_notify` is a no-op function (open.ts).
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
  const first = await reserveSeqs(trx, events.length);
  const stored: LifelineEvent[] = new Array(events.length);
  for (let i = 0; i < events.length; i += EVENTS_PER_INSERT) {
    const rows: EventsTable[] = [];
    for (let j = i; j < Math.min(i + EVENTS_PER_INSERT, events.length); j++) {
      const e = events[j];
      // Spelled out: on Node 20, `{ ...e, seq, at }` (a spread then new keys) costs microseconds per object.
      stored[j] = {
        seq: first + j,
        type: e.type,
        at,
        deployment_id: e.deployment_id,
        attempt_id: e.attempt_id,
        data: e.data,
      };
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
