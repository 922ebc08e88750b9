// Opens the database named by a `sqlite:` or `postgres://` URL and brings its schema up to date.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration } from 'kysely';
import type { Database } from './schema.ts';
import * as m001 from './migrations/001_initial.ts';
import * as m002 from './migrations/002_attempt_detail.ts';
import * as m007 from './migrations/007_rollback_of.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /** For SQLite: the database file (the single-instance lock sits next to it). */
  file: string | null;
  close(): Promise<void>;
}

const MIGRATIONS: Record<string, Migration> = {
  '001_initial': m001,
  '002_attempt_detail': m002,
  '007_rollback_of': m007,
};

// int8 (bigint, counts) as JS numbers: seqs and byte offsets stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export function sqlitePath(url: string): string | null {
  return url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : null;
}

export async function openStore(url: string, opts: { durable?: boolean } = {}): Promise<Store> {
  const file = sqlitePath(url);
  let store: Store;
  if (file !== null) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file, { timeout: 5000 });
    sqlite.pragma('journal_mode = WAL');
    // FULL: a commit survives power loss, as an accepted state must. NORMAL only on request.
    sqlite.pragma(`synchronous = ${opts.durable === false ? 'NORMAL' : 'FULL'}`);
    sqlite.pragma('foreign_keys = ON');
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    store = { db, dialect: 'sqlite', file: path.resolve(file), close: () => db.destroy() };
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    store = { db, dialect: 'postgres', file: null, close: () => db.destroy() };
  } else {
    throw new Error(`unsupported database URL (expected sqlite:<path> or postgres://…)`);
  }
  try {
    await migrate(store.db);
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'lifeline_migrations',
    migrationLockTableName: 'lifeline_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${(error as Error).message}`);
  }
}
