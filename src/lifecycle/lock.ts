// One server per SQLite database. The lock is an exclusive SQLite lock on a sidecar file: the kernel
// drops it when the holder dies, however it dies, so there is no stale lock to clean up. The lock sits
// beside the database's real path, so a symlink (or another spelling of the path) meets the same lock.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';

export interface DbLock {
  release(): void;
}

export class LockHeld extends Error {
  constructor(file: string, holder: string) {
    super(
      `another Lifeline server is using ${file} (${holder}); stop it first, or give this one its own database`,
    );
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

export function lockSqlite(dbFile: string, about: Record<string, unknown>): DbLock {
  const real = realDbPath(dbFile);
  const lockFile = `${real}.lock`;
  const ownerFile = `${real}.owner`;
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
        holder = `pid ${o.pid} on ${o.host}, instance ${o.instance}, since ${o.since}`;
      } catch {
        // the owner note is informative only
      }
      throw new LockHeld(dbFile, holder);
    }
    throw err;
  }
  fs.writeFileSync(ownerFile, JSON.stringify(about) + '\n');
  return {
    release() {
      db.close();
    },
  };
}
