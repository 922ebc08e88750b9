// What a database error means for the caller: the store is down (an outage, 503), another writer won
// (re-decide on fresh rows), the database asks for a retry (serialization failure, deadlock), or a bug.
// pg reports SQLSTATE codes, better-sqlite3 SQLITE_* codes, Node's net layer E* codes.

export type StoreErrorKind = 'unavailable' | 'conflict' | 'retry' | 'other';

/** SQLite result codes that mean "the database cannot be used right now", not "the SQL is wrong". */
const SQLITE_UNAVAILABLE =
  /^SQLITE_(BUSY|LOCKED|IOERR|CANTOPEN|FULL|READONLY|CORRUPT|NOTADB|PROTOCOL|NOMEM|AUTH|PERM)/;
/** Node network errors while reaching the server. */
const NET_UNAVAILABLE =
  /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EPIPE|EAI_AGAIN)$/;
/**
 * Postgres SQLSTATE: class 08 (connection), 53 (insufficient resources), 57P01-04 (admin shutdown,
 * crash shutdown, cannot connect now, database dropped), 57014 (statement timeout: the server is too
 * slow to answer), 25P03 (idle-in-transaction timeout ended the session).
 */
const PG_UNAVAILABLE = /^(08...|53...|57P0[1-4]|57014|25P03)$/;
const MESSAGE_UNAVAILABLE =
  /driver has already been destroyed|database connection is not open|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Client was closed and is not queryable|Connection closed|Query read timeout/i;

/** The file system under the data dir or the database refuses writes: full, over quota, read-only, failing. */
const FS_UNAVAILABLE = /^(ENOSPC|EDQUOT|EROFS|EIO)$/;

/**
 * The SQLite file this process holds is no longer the file at its path (deleted or replaced under the
 * running server): a write would go to an unlinked inode and vanish at the next start.
 */
export class StoreFileGone extends Error {
  readonly code = 'LIFELINE_DB_FILE_GONE';
  constructor(file: string, why: string) {
    super(
      `the database file ${file} ${why} while the server held it open; refusing writes, which would be ` +
        `lost. Stop the server, restore the database from a backup, and start again`,
    );
    this.name = 'StoreFileGone';
  }
}

const PG_RETRY = /^(40001|40P01)$/;

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : '';
}

export function classifyStoreError(err: unknown): StoreErrorKind {
  if (!(err instanceof Error)) return 'other';
  const code = codeOf(err);
  if (
    SQLITE_UNAVAILABLE.test(code) ||
    NET_UNAVAILABLE.test(code) ||
    PG_UNAVAILABLE.test(code) ||
    FS_UNAVAILABLE.test(code) ||
    err instanceof StoreFileGone
  ) {
    return 'unavailable';
  }
  // 23505 unique_violation: a concurrent writer inserted the same name / attempt number first.
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return 'conflict';
  }
  if (PG_RETRY.test(code)) return 'retry';
  if (MESSAGE_UNAVAILABLE.test(err.message)) return 'unavailable';
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err ? classifyStoreError(cause) : 'other';
}

/** Is this error the store being down (503) rather than a bug (500)? */
export function isStoreUnavailable(err: unknown): boolean {
  return classifyStoreError(err) === 'unavailable';
}

/** The constraint a unique violation hit, when the driver says (pg does). */
export function constraintOf(err: unknown): string | null {
  const c = (err as { constraint?: unknown })?.constraint;
  return typeof c === 'string' ? c : null;
}

/** Is this the store having been closed by this process (it will not come back), not an outage? */
export function isStoreClosed(err: unknown): boolean {
  const message = (err as Error)?.message ?? '';
  return /driver has already been destroyed|Cannot use a pool after calling end/i.test(message);
}
