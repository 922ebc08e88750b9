// An attempt's archived output (SPEC §11, table log_archive): the log text as served and the pruned
// log_line/runner_event events, gzip-compressed, written in the transaction that deletes those events;
// and the raw run-dir output past the log_line cap, copied before that run dir is removed.
import { once } from 'node:events';
import { promisify } from 'node:util';
import { createGzip, gunzip, gzip } from 'node:zlib';
import type { Kysely, Transaction } from 'kysely';
import type { Database, LogArchiveTable } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

const gz = promisify(gzip);
const gunz = promisify(gunzip);

/** Compressed off the event loop (zlib's thread pool). */
export const compress = (buf: Buffer): Promise<Buffer> => gz(buf);
export const decompress = (buf: Buffer): Promise<Buffer> => gunz(buf);

/**
 * A gzip stream fed piece by piece (the same gzip format as `compress`): only the compressed output
 * is held, never the whole input. Call destroy() when abandoning it.
 */
export class GzipWriter {
  private readonly z = createGzip();
  private readonly chunks: Buffer[] = [];
  private readonly done: Promise<Buffer>;

  constructor() {
    this.z.on('data', (c: Buffer) => this.chunks.push(c));
    this.done = new Promise((resolve, reject) => {
      this.z.on('end', () => resolve(Buffer.concat(this.chunks)));
      this.z.on('error', reject);
    });
    this.done.catch(() => undefined); // seen by whoever awaits end()
  }

  async write(buf: Buffer): Promise<void> {
    if (buf.length > 0 && !this.z.write(buf)) await once(this.z, 'drain');
  }

  end(): Promise<Buffer> {
    this.z.end();
    return this.done;
  }

  destroy(): void {
    this.z.destroy();
  }
}

export const PRUNED_TYPES = ['log_line', 'runner_event'] as const;

/** A pruned event as archived: a log_line's text is in the archived log at `offset`, not repeated. */
export type ArchivedEvent =
  | { seq: number; at: string; type: 'log_line'; stream: string; offset: number }
  | { seq: number; at: string; type: string; data: Record<string, unknown> };

export interface OutputEvent {
  seq: number;
  at: string;
  type: string;
  data: string;
  log_offset: number | null;
}

/** Up to `limit` of the attempt's events that pruning removes, with seq > afterSeq, in seq order: one page, by the primary key. */
export async function selectOutputEventsPage(
  db: Db,
  attemptId: string,
  afterSeq: number,
  limit: number,
): Promise<OutputEvent[]> {
  const rows = await db
    .selectFrom('events')
    .select(['seq', 'at', 'type', 'data', 'log_offset'])
    .where('attempt_id', '=', attemptId)
    .where('type', 'in', PRUNED_TYPES)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    ...r,
    seq: Number(r.seq),
    log_offset: r.log_offset === null ? null : Number(r.log_offset),
  }));
}

/**
 * Up to `limit` of the attempt's log lines (seq <= lastSeq) with log_offset > afterOffset, in log
 * order: one page of the log text, by the (attempt_id, log_offset) index.
 */
export async function selectLogLinesPage(
  db: Db,
  attemptId: string,
  afterOffset: number,
  lastSeq: number,
  limit: number,
): Promise<{ offset: number; text: string }[]> {
  const rows = await db
    .selectFrom('events')
    .select(['log_offset', 'data'])
    .where('attempt_id', '=', attemptId)
    .where('log_offset', '>', afterOffset)
    .where('type', '=', 'log_line')
    .where('seq', '<=', lastSeq)
    .orderBy('log_offset')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    offset: Number(r.log_offset),
    text: (JSON.parse(r.data) as { text: string }).text,
  }));
}

/** How many such events the attempt has and the highest seq: what the pruner checks did not change. */
export async function countOutputEvents(db: Db, attemptId: string): Promise<{ n: number; last: number }> {
  const row = await db
    .selectFrom('events')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.max('seq').as('last')])
    .where('attempt_id', '=', attemptId)
    .where('type', 'in', PRUNED_TYPES)
    .executeTakeFirst();
  return { n: Number(row?.n ?? 0), last: Number(row?.last ?? 0) };
}

/** Inserts or completes the attempt's row (a row holding only the capped rest may exist). */
async function upsert(
  trx: Transaction<Database>,
  attemptId: string,
  set: Partial<Omit<LogArchiveTable, 'attempt_id'>>,
): Promise<void> {
  const res = await trx
    .updateTable('log_archive')
    .set(set)
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) > 0) return;
  await trx
    .insertInto('log_archive')
    .values({
      attempt_id: attemptId,
      pruned_at: null,
      log: null,
      log_bytes: null,
      events: null,
      event_count: null,
      last_seq: null,
      rest_at: null,
      stdout_rest: null,
      stderr_rest: null,
      ...set,
    })
    .execute();
}

export async function saveArchive(
  trx: Transaction<Database>,
  a: {
    attemptId: string;
    at: string;
    log: Buffer;
    logBytes: number;
    events: Buffer;
    eventCount: number;
    lastSeq: number;
    deleting: boolean;
  },
): Promise<void> {
  await upsert(trx, a.attemptId, {
    pruned_at: a.at,
    log: a.log,
    log_bytes: a.logBytes,
    events: a.events,
    event_count: a.eventCount,
    last_seq: a.lastSeq,
    deleting: a.deleting ? 1 : 0,
  });
}

export async function saveRest(
  trx: Transaction<Database>,
  attemptId: string,
  at: string,
  stdout: Buffer,
  stderr: Buffer,
): Promise<void> {
  await upsert(trx, attemptId, { rest_at: at, stdout_rest: stdout, stderr_rest: stderr });
}

/**
 * Deletes up to `limit` of the attempt's archived events (seq <= lastSeq, type log_line/runner_event);
 * returns how many went. By seq list, since Postgres has no DELETE … LIMIT.
 */
export async function deleteArchivedEvents(
  trx: Transaction<Database>,
  attemptId: string,
  lastSeq: number,
  limit: number,
): Promise<number> {
  const res = await trx
    .deleteFrom('events')
    .where(
      'seq',
      'in',
      trx
        .selectFrom('events')
        .select('seq')
        .where('attempt_id', '=', attemptId)
        .where('type', 'in', PRUNED_TYPES)
        .where('seq', '<=', lastSeq)
        .orderBy('seq')
        .limit(limit),
    )
    .executeTakeFirst();
  return Number(res.numDeletedRows);
}

export async function finishDeleting(trx: Transaction<Database>, attemptId: string): Promise<void> {
  await trx.updateTable('log_archive').set({ deleting: 0 }).where('attempt_id', '=', attemptId).execute();
}

/** Archives whose events are still being deleted (a crash or a big attempt between batches). */
export async function selectDeleting(db: Db): Promise<{ attempt_id: string; last_seq: number }[]> {
  const rows = await db
    .selectFrom('log_archive')
    .select(['attempt_id', 'last_seq'])
    .where('deleting', '=', 1)
    .execute();
  return rows.map((r) => ({ attempt_id: r.attempt_id, last_seq: Number(r.last_seq) }));
}

export interface ArchiveInfo {
  pruned: boolean;
  logBytes: number;
  rest: boolean;
}

/** What is archived for the attempt, without the blobs; null when nothing. */
export async function selectArchiveInfo(db: Db, attemptId: string): Promise<ArchiveInfo | null> {
  const row = await db
    .selectFrom('log_archive')
    .select(['pruned_at', 'log_bytes', 'rest_at'])
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  if (!row) return null;
  return { pruned: row.pruned_at !== null, logBytes: Number(row.log_bytes ?? 0), rest: row.rest_at !== null };
}

/** The archived log text (bytes 0..log_bytes of the attempt's log). */
export async function selectArchivedLog(db: Db, attemptId: string): Promise<Buffer> {
  const row = await db
    .selectFrom('log_archive')
    .select('log')
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  return row?.log ? decompress(row.log) : Buffer.alloc(0);
}

/** The archived pruned events, in seq order ([] when not pruned). */
export async function selectArchivedEvents(db: Db, attemptId: string): Promise<ArchivedEvent[]> {
  const row = await db
    .selectFrom('log_archive')
    .select('events')
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  if (!row?.events) return [];
  return JSON.parse((await decompress(row.events)).toString('utf8')) as ArchivedEvent[];
}

/** The raw output past the cap, as copied from the run dir. */
export async function selectArchivedRest(
  db: Db,
  attemptId: string,
): Promise<{ stdout: Buffer; stderr: Buffer }> {
  const row = await db
    .selectFrom('log_archive')
    .select(['stdout_rest', 'stderr_rest'])
    .where('attempt_id', '=', attemptId)
    .executeTakeFirst();
  return {
    stdout: row?.stdout_rest ? await decompress(row.stdout_rest) : Buffer.alloc(0),
    stderr: row?.stderr_rest ? await decompress(row.stderr_rest) : Buffer.alloc(0),
  };
}
