// Freezes made through the API (SPEC §13.2): one row per freeze, standing until lifted. Times are the
// database's clock, like every time a gate compares (store/instances.ts).
import type { Kysely, Transaction } from 'kysely';
import type { Freeze, FreezeMatch, FreezeWhen } from '../domain/freeze.ts';
import type { AttemptGatesTable, Database, FreezesTable } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** The freezes that stand (not lifted), oldest first; ended ones too, until they are lifted or replaced. */
export async function selectStandingFreezes(db: Db): Promise<FreezesTable[]> {
  return db
    .selectFrom('freezes')
    .selectAll()
    .where('lifted_at', 'is', null)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export async function selectStandingFreeze(db: Db, name: string): Promise<FreezesTable | undefined> {
  return db
    .selectFrom('freezes')
    .selectAll()
    .where('name', '=', name)
    .where('lifted_at', 'is', null)
    .executeTakeFirst();
}

export async function insertFreeze(trx: Transaction<Database>, row: FreezesTable): Promise<void> {
  await trx.insertInto('freezes').values(row).execute();
}

/** Lifts a standing freeze; false when it was lifted already (by a racing request). */
export async function liftFreeze(
  trx: Transaction<Database>,
  id: string,
  at: string,
  by: string,
): Promise<boolean> {
  const r = await trx
    .updateTable('freezes')
    .set({ lifted_at: at, lifted_by: by })
    .where('id', '=', id)
    .where('lifted_at', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

export function toFreeze(row: FreezesTable): Freeze {
  return {
    name: row.name,
    match: JSON.parse(row.match) as FreezeMatch,
    fromMs: Date.parse(row.from_at),
    untilMs: Date.parse(row.until_at),
    when: row.mode as FreezeWhen,
    source: 'api',
    liftedMs: row.lifted_at === null ? null : Date.parse(row.lifted_at),
  };
}

/** Attempts waiting on a gate, in queue order (commit order of their gate_waiting events). */
export async function selectWaitingOn(db: Db, gate: string): Promise<AttemptGatesTable[]> {
  return db
    .selectFrom('attempt_gates')
    .selectAll()
    .where('gate', '=', gate)
    .where('opened_at', 'is', null)
    .orderBy('queue_seq')
    .execute();
}
