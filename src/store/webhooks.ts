// Webhook cursors and leases (SPEC §10). Every write is one short statement, and every change a
// delivering instance makes is a compare-and-set on its lease, so an instance that lost the lease
// (paused, partitioned) can never move a cursor another instance now owns. Lease and backoff times are
// the database's clock, written and judged there: no instance's own clock decides who delivers or when.
import type { Kysely } from 'kysely';
import type { LifelineEvent } from '../domain/types.ts';
import { toEvent } from './rows.ts';
import type { Database, WebhooksTable } from './schema.ts';
import { dbAtIso, dbNowIso, dialectOf } from './instances.ts';

type Db = Kysely<Database>;

/** Adds a row for each configured webhook not seen before, starting after the current last seq. */
export async function ensureWebhooks(db: Db, names: string[], lastSeq: number, at: string): Promise<void> {
  for (const name of names) {
    await db
      .insertInto('webhooks')
      .values({ name, delivered_seq: lastSeq, enabled: 1, failures: 0, updated_at: at })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }
}

export async function selectWebhooks(db: Db): Promise<WebhooksTable[]> {
  return db.selectFrom('webhooks').selectAll().orderBy('name').execute();
}

export async function selectWebhook(db: Db, name: string): Promise<WebhooksTable | undefined> {
  return db.selectFrom('webhooks').selectAll().where('name', '=', name).executeTakeFirst();
}

/** The webhook's row and the database's clock read with it (ms), which its lease and backoff are on. */
export async function selectWebhookAt(
  db: Db,
  name: string,
): Promise<{ row: WebhooksTable; nowMs: number } | undefined> {
  const r = await db
    .selectFrom('webhooks')
    .selectAll()
    .select(dbNowIso(dialectOf(db)).as('db_now'))
    .where('name', '=', name)
    .executeTakeFirst();
  if (!r) return undefined;
  const { db_now, ...row } = r;
  return { row, nowMs: Date.parse(db_now) };
}

/**
 * Takes or extends the lease, until `holdMs` from the database's now, when it is free, expired (on the
 * database's clock) or already ours. True when we hold it.
 */
export async function claimLease(db: Db, name: string, owner: string, holdMs: number) {
  const dialect = dialectOf(db);
  const res = await db
    .updateTable('webhooks')
    .set({ lease_owner: owner, lease_until: dbAtIso(dialect, holdMs) })
    .where('name', '=', name)
    .where((eb) =>
      eb.or([
        eb('lease_owner', 'is', null),
        eb('lease_owner', '=', owner),
        eb('lease_until', '<', dbNowIso(dialect)),
      ]),
    )
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function releaseLease(db: Db, name: string, owner: string): Promise<void> {
  await db
    .updateTable('webhooks')
    .set({ lease_owner: null, lease_until: null })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}

/** Moves the cursor forward from `from` to `to` after a 2xx; false if the lease or the cursor moved. */
export async function advanceCursor(
  db: Db,
  name: string,
  owner: string,
  from: number,
  to: number,
  status: number | null,
  at: string,
): Promise<boolean> {
  const res = await db
    .updateTable('webhooks')
    .set({
      delivered_seq: to,
      failures: 0,
      next_attempt_at: null,
      ...(status === null ? {} : { last_status: status, last_error: null }),
      updated_at: at,
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .where('delivered_seq', '=', from)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Records a failed delivery: the cursor stays, the next try waits; a 410 disables the webhook. */
export async function recordFailure(
  db: Db,
  name: string,
  owner: string,
  f: {
    status: number | null;
    error: string;
    failures: number;
    /** The backoff: the next try waits this long on the database's clock (null: no next try). */
    retryInMs: number | null;
    disable: boolean;
  },
  at: string,
): Promise<void> {
  await db
    .updateTable('webhooks')
    .set({
      last_status: f.status,
      last_error: f.error,
      failures: f.failures,
      next_attempt_at: f.retryInMs === null ? null : dbAtIso(dialectOf(db), f.retryInMs),
      ...(f.disable ? { enabled: 0 } : {}),
      updated_at: at,
    })
    .where('name', '=', name)
    .where('lease_owner', '=', owner)
    .execute();
}

/** Moves the cursor back so that delivery restarts at `fromSeq`; re-enables and clears the backoff. */
export async function rewindCursor(db: Db, name: string, fromSeq: number, at: string): Promise<boolean> {
  const res = await db
    .updateTable('webhooks')
    .set({ delivered_seq: fromSeq - 1, enabled: 1, failures: 0, next_attempt_at: null, updated_at: at })
    .where('name', '=', name)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The next events after the cursor, every type (the caller picks the selected ones). */
export async function selectEventsAfter(db: Db, after: number, limit: number): Promise<LifelineEvent[]> {
  const rows = await db
    .selectFrom('events')
    .selectAll()
    .where('seq', '>', after)
    .orderBy('seq', 'asc')
    .limit(limit)
    .execute();
  return rows.map(toEvent);
}

/** Selected events not yet delivered. */
export async function countPending(db: Db, after: number, types: string[]): Promise<number> {
  const row = await db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('seq', '>', after)
    .where('type', 'in', types)
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}
