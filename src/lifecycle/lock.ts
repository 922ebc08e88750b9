// One server per SQLite database. The lock is an exclusive SQLite lock on a sidecar file: the kernel
// drops it when the holder dies, however it dies, so there is no stale lock to clean up.
import fs from 'node:fs';
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

export function lockSqlite(dbFile: string, about: Record<string, unknown>): DbLock {
  const lockFile = `${dbFile}.lock`;
  const ownerFile = `${dbFile}.owner`;
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
