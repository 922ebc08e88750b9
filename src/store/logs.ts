// An attempt's log text (its log_line texts, each + "\n", in seq order) read by byte range, and
// the ingestion state kept next to it. Every read here is an index seek on (attempt_id, log_offset).
import type { Kysely, Transaction } from 'kysely';
import type { AttemptLogsTable, Database } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

export function emptyAttemptLog(attemptId: string): AttemptLogsTable {
  return {
    attempt_id: attemptId,
    lines: 0,
    bytes: 0,
    stdout_skip: 0,
    stderr_skip: 0,
    events_skip: 0,
    cap_stdout: null,
    cap_stderr: null,
    event_count: 0,
    event_bytes: 0,
    events_capped: 0,
  };
}

export async function selectAttemptLog(db: Db, attemptId: string): Promise<AttemptLogsTable> {
  const row = await db
    .selectFrom('attempt_logs')
    .selectAll()
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  if (!row) return emptyAttemptLog(attemptId);
  return {
    ...row,
    lines: Number(row.lines),
    bytes: Number(row.bytes),
    cap_stdout: row.cap_stdout === null ? null : Number(row.cap_stdout),
    cap_stderr: row.cap_stderr === null ? null : Number(row.cap_stderr),
    event_count: Number(row.event_count),
    event_bytes: Number(row.event_bytes),
    events_capped: Number(row.events_capped),
  };
}

/** Called after the attempt's cursors moved by compare-and-set, so no other writer is here. */
export async function saveAttemptLog(trx: Transaction<Database>, row: AttemptLogsTable): Promise<void> {
  const { attempt_id, ...rest } = row;
  const res = await trx
    .updateTable('attempt_logs')
    .set(rest)
    .where('attempt_id', '=', attempt_id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) await trx.insertInto('attempt_logs').values(row).execute();
}

export interface StoredLine {
  offset: number;
  text: string;
}

function toLines(rows: { log_offset: number | null; data: string }[]): StoredLine[] {
  return rows.map((r) => ({
    offset: Number(r.log_offset),
    text: (JSON.parse(r.data) as { text: string }).text,
  }));
}

/** Lines overlapping [from, to): the one holding `from`, then those starting before `to`. */
export async function selectLogRange(
  db: Db,
  attemptId: string,
  from: number,
  to: number,
): Promise<StoredLine[]> {
  const first = await db
    .selectFrom('events')
    .select('log_offset')
    .where('attempt_id', '=', attemptId)
    .where('log_offset', '<=', from)
    .orderBy('log_offset', 'desc')
    .limit(1)
    .executeTakeFirst();
  const rows = await db
    .selectFrom('events')
    .select(['log_offset', 'data'])
    .where('attempt_id', '=', attemptId)
    .where('log_offset', '>=', Number(first?.log_offset ?? 0))
    .where('log_offset', '<', to)
    .orderBy('log_offset', 'asc')
    .execute();
  return toLines(rows);
}

/** The last `n` stored lines, in order. */
export async function selectLogTail(db: Db, attemptId: string, n: number): Promise<StoredLine[]> {
  const rows = await db
    .selectFrom('events')
    .select(['log_offset', 'data'])
    .where('attempt_id', '=', attemptId)
    .where('log_offset', 'is not', null)
    .orderBy('log_offset', 'desc')
    .limit(n)
    .execute();
  return toLines(rows).reverse();
}

/** The attempt's merged outputs (SPEC §12.1), written with the runner events that published them. */
export async function saveAttemptOutputs(
  trx: Transaction<Database>,
  attemptId: string,
  outputs: string,
): Promise<void> {
  await trx.updateTable('attempts').set({ outputs }).where('id', '=', attemptId).execute();
}
