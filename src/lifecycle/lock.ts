// One server per data dir (its identity and run dirs) on every store, and one per SQLite database. Each
// lock is an exclusive SQLite lock on a sidecar file: the kernel drops it when the holder dies, however
// it dies, so there is no stale lock to clean up. A note beside it names the holder for the refusal. The
// database lock sits beside its real path, so a symlink (or another spelling of the path) meets the same
// lock; a hard link is another path to the same file, so a database file with more than one link is
// refused (each server would keep its own WAL beside its own name, and one's commits would be lost).
// Lock files and notes are 0600, whatever the umask.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';

export interface DbLock {
  release(): void;
}

export class LockHeld extends Error {
  constructor(what: string, holder: string, instead: string) {
    super(`another Lifeline server is using ${what} (${holder}); stop it first, or give this one ${instead}`);
    this.name = 'LockHeld';
  }
}

/** The database file's real path: symlinks resolved; for a file not yet created, its directory's. */
export function realDbPath(dbFile: string): string {
  try {
    return fs.realpathSync(dbFile);
  } catch {
    return path.join(fs.realpathSync(path.dirname(path.resolve(dbFile))), path.basename(dbFile));
  }
}

/** The database file has another name (a hard link): a second server could open it past the lock. */
export class DbLinked extends Error {
  constructor(dbFile: string, links: number) {
    super(
      `the database file ${dbFile} has ${links} hard links: a server opened through another of its names ` +
        `would pass the one-server lock and keep a WAL of its own; remove the other links (find / -samefile ${dbFile})`,
    );
    this.name = 'StartupError';
  }
}

export function lockSqlite(dbFile: string, about: Record<string, unknown>): DbLock {
  const real = realDbPath(dbFile);
  const lock = lockWith(
    `${real}.lock`,
    `${real}.owner`,
    about,
    (holder) => new LockHeld(dbFile, holder, 'its own database'),
  );
  // Counted while holding the lock: a link made later is seen by the server that would use it.
  try {
    const fd = fs.openSync(real, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    try {
      const links = fs.fstatSync(fd).nlink;
      if (links > 1) throw new DbLinked(dbFile, links);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    lock.release();
    throw err;
  }
  return lock;
}

/** The data dir lock: two servers sharing one data dir would share an instance id and its attempts. */
export function lockDataDir(dataDir: string, about: Record<string, unknown>): DbLock {
  return lockWith(
    path.join(dataDir, 'lifeline.lock'),
    path.join(dataDir, 'lifeline.lock.owner'),
    about,
    (holder) => new LockHeld(`data dir ${dataDir}`, holder, 'its own data_dir'),
  );
}

function lockWith(
  lockFile: string,
  ownerFile: string,
  about: Record<string, unknown>,
  held: (holder: string) => LockHeld,
): DbLock {
  ownerOnly(lockFile);
  const db = new SQLite(lockFile, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (x)');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      let holder = 'holder unknown';
      try {
        const o = JSON.parse(fs.readFileSync(ownerFile, 'utf8'));
        holder = `pid ${o.pid} on ${o.host}${o.instance ? `, instance ${o.instance}` : ''}, since ${o.since}`;
      } catch {
        // the owner note is informative only
      }
      throw held(holder);
    }
    throw err;
  }
  ownerOnly(ownerFile);
  fs.writeFileSync(ownerFile, JSON.stringify(about) + '\n');
  return {
    release() {
      db.close();
    },
  };
}

/** Creates `file` if missing and makes it 0600 (a mode given at creation is narrowed by the umask). */
function ownerOnly(file: string): void {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
  } finally {
    fs.closeSync(fd);
  }
}
