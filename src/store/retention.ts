// The pruner's row (SPEC §11): which instance prunes logs now (a lease, like a webhook's) and
// `pruned_before`, the seq below which pruned log_line/runner_event events are missing. Every write a
// pruning transaction makes starts with fencePrune, which holds the row until commit on Postgres, so two
// instances' batches never overlap even when one of them outlived its lease without knowing. The lease
// is written and judged on the database's clock only.
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.ts';
import { dbAtIso, dbNowIso, dialectOf } from './instances.ts';

type Db = Kysely<Database> | Transaction<Database>;

export const FINAL_ATTEMPT_STATES = ['succeeded', 'failed', 'cancelled'] as const;

/**
 * Takes or extends the lease, until `holdMs` from the database's now, when it is free, expired (on the
 * database's clock) or already ours. True when we hold it.
 */
export async function claimPruneLease(db: Db, owner: string, holdMs: number, at: string): Promise<boolean> {
  const dialect = dialectOf(db);
  const res = await db
    .updateTable('retention')
    .set({ lease_owner: owner, lease_until: dbAtIso(dialect, holdMs), updated_at: at })
    .where('name', '=', 'logs')
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

export async function releasePruneLease(db: Db, owner: string): Promise<void> {
  await db
    .updateTable('retention')
    .set({ lease_owner: null, lease_until: null })
    .where('name', '=', 'logs')
    .where('lease_owner', '=', owner)
    .execute();
}

/**
 * First write of every pruning transaction: true while our lease holds (on the database's clock). `below`, when given, raises
 * pruned_before to at least that seq in the same statement.
 */
export async function fencePrune(
  trx: Transaction<Database>,
  owner: string,
  now: string,
  below?: number,
): Promise<boolean> {
  const res = await trx
    .updateTable('retention')
    .set({
      updated_at: now,
      ...(below === undefined
        ? {}
        : {
            pruned_before: sql<number>`case when pruned_before is null or pruned_before < ${below} then ${below} else pruned_before end`,
          }),
    })
    .where('name', '=', 'logs')
    .where('lease_owner', '=', owner)
    .where('lease_until', '>', dbNowIso(dialectOf(trx)))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

/** Null until some log was pruned. */
export async function selectPrunedBefore(db: Db): Promise<number | null> {
  const row = await db
    .selectFrom('retention')
    .select('pruned_before')
    .where('name', '=', 'logs')
    .executeTakeFirst();
  return row?.pruned_before === null || row?.pruned_before === undefined ? null : Number(row.pruned_before);
}

/** Ended attempts whose logs are due (ended before `cutoff`) and not yet pruned, oldest first. */
export async function selectPruneCandidates(db: Db, cutoff: string, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('attempts')
    .leftJoin('log_archive', 'log_archive.attempt_id', 'attempts.id')
    .select('attempts.id')
    .where('attempts.state', 'in', FINAL_ATTEMPT_STATES)
    .where('attempts.ended_at', '<', cutoff)
    .where('log_archive.pruned_at', 'is', null)
    .orderBy('attempts.ended_at')
    .orderBy('attempts.id')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/** This instance's ended attempts whose run dir is due (ended before `cutoff`) and still there. */
export async function selectRunDirCandidates(
  db: Db,
  owner: string,
  cutoff: string,
  limit: number,
): Promise<{ id: string; run_dir: string }[]> {
  const rows = await db
    .selectFrom('attempts')
    .select(['id', 'run_dir'])
    .where('owner', '=', owner)
    .where('run_dir', 'is not', null)
    .where('state', 'in', FINAL_ATTEMPT_STATES)
    .where('ended_at', '<', cutoff)
    .orderBy('ended_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({ id: r.id, run_dir: r.run_dir! }));
}

/** The run dir is gone: nothing reads it any more (not a state change, so no version or event). */
export async function clearRunDir(db: Db, attemptId: string): Promise<void> {
  await db.updateTable('attempts').set({ run_dir: null }).where('id', '=', attemptId).execute();
}
