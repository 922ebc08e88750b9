// Who approved an attempt (SPEC §13.3): one compare-and-set, and the reads the approval gate makes.
import type { Kysely, Transaction } from 'kysely';
import type { AttemptsTable, Database } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Records the approver on a queued attempt not yet approved; false when it was not (a race, an end). */
export async function setApproved(
  trx: Transaction<Database>,
  attemptId: string,
  by: string,
  at: string,
): Promise<boolean> {
  const r = await trx
    .updateTable('attempts')
    .set({ approved_by: by, approved_at: at })
    .where('id', '=', attemptId)
    .where('state', '=', 'queued')
    .where('approved_by', 'is', null)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) === 1;
}

/** The attempt numbered `number` of a deployment (the one an automatic retry reruns is the one before it). */
export async function selectAttemptByNumber(
  db: Db,
  deploymentId: string,
  number: number,
): Promise<AttemptsTable | undefined> {
  return db
    .selectFrom('attempts')
    .selectAll()
    .where('deployment_id', '=', deploymentId)
    .where('number', '=', number)
    .executeTakeFirst();
}

/** Attempts approved while still waiting on the approval gate (a crash between the two), in queue order. */
export async function selectApprovedWaiting(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('attempt_gates')
    .innerJoin('attempts', 'attempts.id', 'attempt_gates.attempt_id')
    .select('attempt_gates.attempt_id')
    .where('attempt_gates.gate', '=', 'approval')
    .where('attempt_gates.opened_at', 'is', null)
    .where('attempts.approved_by', 'is not', null)
    .orderBy('attempt_gates.queue_seq')
    .execute();
  return rows.map((r) => r.attempt_id);
}
