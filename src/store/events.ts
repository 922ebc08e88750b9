// The event log: one global, gap-free seq taken from a counter row inside the writing transaction.
import type { Kysely, Transaction } from 'kysely';
import type { EventType, LifelineEvent, NewEvent } from '../domain/types.ts';
import type { Database } from './schema.ts';
import { toEvent } from './rows.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Reserves `n` seqs; the counter row lock orders appends by commit. Returns the first. */
export async function reserveSeqs(trx: Transaction<Database>, n: number): Promise<number> {
  const row = await trx
    .updateTable('counters')
    .set((eb) => ({ value: eb('value', '+', n) }))
    .where('name', '=', 'event_seq')
    .returning('value')
    .executeTakeFirstOrThrow();
  return Number(row.value) - n + 1;
}

export async function insertEvents(
  trx: Transaction<Database>,
  events: NewEvent[],
  at: string,
  /** Per event: a log line's start offset in its attempt's log text (see store/logs.ts). */
  logOffsets?: (number | null)[],
): Promise<LifelineEvent[]> {
  if (events.length === 0) return [];
  const first = await reserveSeqs(trx, events.length);
  const stored = events.map((e, i) => ({ ...e, seq: first + i, at }));
  // Chunked: SQLite caps bound parameters per statement.
  for (let i = 0; i < stored.length; i += 100) {
    await trx
      .insertInto('events')
      .values(
        stored
          .slice(i, i + 100)
          .map((e, j) => ({ ...e, data: JSON.stringify(e.data), log_offset: logOffsets?.[i + j] ?? null })),
      )
      .execute();
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

export async function selectEvents(db: Db, f: EventFilter): Promise<LifelineEvent[]> {
  let q = db.selectFrom('events').selectAll().where('seq', '>', f.after);
  if (f.deploymentId) q = q.where('deployment_id', '=', f.deploymentId);
  if (f.attemptId) q = q.where('attempt_id', '=', f.attemptId);
  if (f.types && f.types.length > 0) q = q.where('type', 'in', f.types);
  const rows = await q.orderBy('seq', 'asc').limit(f.limit).execute();
  return rows.map(toEvent);
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
