// Gates (SPEC §13): the waiting records of attempts and the concurrency slots. One query per function;
// the decisions are in domain/gates.ts, the transactions in lifecycle/gates/.
import { runCompiled } from './compiled.ts';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { AttemptGatesTable, Database, GateSlotsTable } from './schema.ts';
import { dialectOf, dbNowIso } from './instances.ts';
import { GATES_CHANNEL } from './listen.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Serialises every grant and queue change of one key: on Postgres the key's row is locked FOR UPDATE
 * until the transaction ends (a concurrent grant waits, then reads what the first committed); SQLite
 * already runs one write transaction at a time.
 */
export async function lockKey(trx: Transaction<Database>, key: string): Promise<void> {
  if (dialectOf(trx) !== 'postgres') return;
  await trx
    .insertInto('gate_keys')
    .values({ key })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  await trx.selectFrom('gate_keys').select('key').where('key', '=', key).forUpdate().execute();
}

/** The slots of a key held now, lowest slot first. */
export async function selectSlots(db: Db, key: string): Promise<GateSlotsTable[]> {
  return db.selectFrom('gate_slots').selectAll().where('key', '=', key).orderBy('slot').execute();
}

/**
 * Takes the lowest free slot of `key` in 1..limit for the attempt; null when none is free. The
 * (key, slot) primary key makes a second grant of one slot a unique violation (the writer re-runs).
 */
export async function grantSlot(
  trx: Transaction<Database>,
  key: string,
  limit: number,
  attemptId: string,
  at: string,
): Promise<number | null> {
  const taken = new Set((await selectSlots(trx, key)).map((s) => Number(s.slot)));
  let slot = 1;
  while (taken.has(slot)) slot++;
  if (slot > limit || taken.size >= limit) return null;
  await trx.insertInto('gate_slots').values({ key, slot, attempt_id: attemptId, since: at }).execute();
  return slot;
}

/** Frees the attempt's slot, if it holds one; returns its key. */
export async function releaseSlot(trx: Transaction<Database>, attemptId: string): Promise<string | null> {
  // Compiled once (store/compiled.ts): every attempt's end runs it (issue 18).
  const r = await runCompiled(trx, 'releaseSlot', [attemptId], () =>
    trx.deleteFrom('gate_slots').where('attempt_id', '=', attemptId).returning('key'),
  );
  return r.rows[0]?.key ?? null;
}

export async function insertGateRow(trx: Transaction<Database>, row: AttemptGatesTable): Promise<void> {
  await trx.insertInto('attempt_gates').values(row).execute();
}

/** Every gate row of an attempt (waiting and opened). */
export async function selectGateRows(db: Db, attemptId: string): Promise<AttemptGatesTable[]> {
  return db.selectFrom('attempt_gates').selectAll().where('attempt_id', '=', attemptId).execute();
}

/** Marks one waiting gate of an attempt open; false when it was not waiting (someone else opened it). */
export async function markGateOpened(
  trx: Transaction<Database>,
  attemptId: string,
  gate: string,
  at: string,
): Promise<boolean> {
  const res = await trx
    .updateTable('attempt_gates')
    .set({ opened_at: at })
    .where('attempt_id', '=', attemptId)
    .where('gate', '=', gate)
    .where('opened_at', 'is', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Makes an opened gate of an attempt wait again; false when it was not open (someone else re-held it). */
export async function reopenGateRow(
  trx: Transaction<Database>,
  attemptId: string,
  gate: string,
  fields: Pick<AttemptGatesTable, 'detail' | 'since' | 'queue_seq' | 'expires_at'>,
): Promise<boolean> {
  const res = await trx
    .updateTable('attempt_gates')
    .set({ ...fields, opened_at: null })
    .where('attempt_id', '=', attemptId)
    .where('gate', '=', gate)
    .where('opened_at', 'is not', null)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** The waiting record is history once the attempt ends (its events keep it): the rows go. */
export async function deleteGateRows(trx: Transaction<Database>, attemptId: string): Promise<number> {
  const res = await runCompiled(trx, 'deleteGateRows', [attemptId], () =>
    trx.deleteFrom('attempt_gates').where('attempt_id', '=', attemptId),
  );
  return Number(res.numAffectedRows ?? 0);
}

/**
 * An ended attempt's waiting records go and, unless `keepSlot`, its concurrency slot; returns the freed
 * slot's key. On PostgreSQL one statement (every end runs it: a round trip fewer), on SQLite the two.
 */
export async function releaseGatesOf(
  trx: Transaction<Database>,
  attemptId: string,
  keepSlot: boolean,
): Promise<string | null> {
  if (!keepSlot && dialectOf(trx) === 'postgres') {
    const r = await sql<{ key: string }>`with g as (delete from attempt_gates where attempt_id = ${attemptId})
      delete from gate_slots where attempt_id = ${attemptId} returning key`.execute(trx);
    return r.rows[0]?.key ?? null;
  }
  await deleteGateRows(trx, attemptId);
  return keepSlot ? null : releaseSlot(trx, attemptId);
}

/** Sets whether a queued attempt waits; a compare-and-set on the flag. */
export async function setWaiting(
  trx: Transaction<Database>,
  attemptId: string,
  from: 0 | 1,
  to: 0 | 1,
  extra: { owner?: string; owner_epoch?: number; opened_at?: string } = {},
): Promise<boolean> {
  const res = await trx
    .updateTable('attempts')
    .set({ waiting: to, ...extra })
    .where('id', '=', attemptId)
    .where('state', '=', 'queued')
    .where('waiting', '=', from)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** How many attempts wait on `gate`/`key` ahead of `queueSeq` (all of them when null). */
export async function countAhead(
  db: Db,
  gate: string,
  key: string | null,
  queueSeq: number | null,
): Promise<number> {
  let q = db
    .selectFrom('attempt_gates')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('gate', '=', gate)
    .where('opened_at', 'is', null);
  q = key === null ? q.where('key', 'is', null) : q.where('key', '=', key);
  if (queueSeq !== null) q = q.where('queue_seq', '<', queueSeq);
  const row = await q.executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** The first `n` waiting on a gate's queue (a concurrency key), in commit order. */
export async function selectQueueHead(
  db: Db,
  gate: string,
  key: string,
  n: number,
): Promise<AttemptGatesTable[]> {
  return db
    .selectFrom('attempt_gates')
    .selectAll()
    .where('gate', '=', gate)
    .where('key', '=', key)
    .where('opened_at', 'is', null)
    .orderBy('queue_seq')
    .limit(n)
    .execute();
}

/** The keys some attempt waits on. */
export async function selectWaitingKeys(db: Db, gate: string): Promise<string[]> {
  const rows = await db
    .selectFrom('attempt_gates')
    .select('key')
    .distinct()
    .where('gate', '=', gate)
    .where('opened_at', 'is', null)
    .where('key', 'is not', null)
    .execute();
  return rows.map((r) => r.key!);
}

/** Waiting gates whose wait has expired on the database's clock. */
export async function selectExpiredWaits(db: Db, limit: number): Promise<AttemptGatesTable[]> {
  return db
    .selectFrom('attempt_gates')
    .selectAll()
    .where('opened_at', 'is', null)
    .where('expires_at', 'is not', null)
    .where('expires_at', '<=', dbNowIso(dialectOf(db)))
    .orderBy('expires_at')
    .limit(limit)
    .execute();
}

/** The earliest expiry of a waiting gate, and the database's clock read with it. */
export async function selectNextExpiry(db: Db): Promise<{ at: string | null; nowMs: number }> {
  const row = await db
    .selectFrom('attempt_gates')
    .select((eb) => [eb.fn.min('expires_at').as('at'), dbNowIso(dialectOf(db)).as('now')])
    .where('opened_at', 'is', null)
    .executeTakeFirst();
  return { at: (row?.at as string | null) ?? null, nowMs: Date.parse(row?.now as string) };
}

export interface WaitingRow extends AttemptGatesTable {
  /** 1-based place in its queue (gate and key), in commit order. */
  position: number;
}

/** The waiting gates of these attempts, each with its live place in its queue. */
export async function selectWaiting(db: Db, attemptIds: readonly string[] | 'all'): Promise<WaitingRow[]> {
  if (attemptIds !== 'all' && attemptIds.length === 0) return [];
  const ranked = db
    .selectFrom('attempt_gates')
    .selectAll()
    .select(
      sql<number>`row_number() over (partition by gate, coalesce(key, '') order by queue_seq)`.as('position'),
    )
    .where('opened_at', 'is', null)
    .as('w');
  let q = db.selectFrom(ranked).selectAll();
  if (attemptIds !== 'all') q = q.where('w.attempt_id', 'in', [...attemptIds]);
  const rows = await q.orderBy('w.queue_seq').execute();
  return rows.map((r) => ({ ...r, position: Number(r.position), queue_seq: Number(r.queue_seq) }));
}

/** Waiting attempts per gate (metrics). */
export async function countWaitingByGate(db: Db): Promise<Record<string, number>> {
  const rows = await db
    .selectFrom('attempt_gates')
    .select(['gate', (eb) => eb.fn.countAll<number>().as('n')])
    .where('opened_at', 'is', null)
    .groupBy('gate')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.gate, Number(r.n)]));
}

/** Asks every instance's gate keeper to look at `key` once this transaction commits (Postgres). */
export async function notifyGate(trx: Transaction<Database>, key: string): Promise<void> {
  if (dialectOf(trx) !== 'postgres') return;
  await sql`SELECT pg_notify(${GATES_CHANNEL}, ${key})`.execute(trx);
}
