// Opens the database named by a `sqlite:` or `postgres://` URL and brings its schema up to date.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration } from 'kysely';
import type { Database } from './schema.ts';
import * as m001 from './migrations/001_initial.ts';
import * as m002 from './migrations/002_attempt_detail.ts';
import * as m003 from './migrations/003_event_indexes.ts';
import * as m004 from './migrations/004_deployment_labels.ts';
import * as m005 from './migrations/005_log_offsets.ts';
import * as m010 from './migrations/010_secret_params.ts';

export type Dialect = 'sqlite' | 'postgres';

/** Postgres pool bounds and timeouts (config `database:`); SQLite ignores them. */
export interface PoolSettings {
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
}

export const DEFAULT_POOL: PoolSettings = {
  poolMax: 10,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 30_000,
  idleInTransactionTimeoutMs: 30_000,
};

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
  '003_event_indexes': m003,
  '004_deployment_labels': m004,
  '005_log_offsets': m005,
  '010_secret_params': m010,
};

// int8 (bigint, counts) as JS numbers: seqs and byte offsets stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export function sqlitePath(url: string): string | null {
  return url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : null;
}

export interface OpenOptions {
  durable?: boolean;
  pool?: PoolSettings;
  /** Told about connection errors outside any query (a lost idle connection); they are outages, not crashes. */
  onConnectionError?: (err: Error) => void;
}

/**
 * A bounded pool with server-side timeouts. Every client gets an error listener for its whole life: pg
 * emits 'error' on a client whose connection drops (a database restart sends 57P01 to each session),
 * and an unheard 'error' event would end the process. The failing query, if any, still rejects, and
 * pg-pool drops the broken client, so the next checkout opens a fresh connection.
 */
export function postgresPool(url: string, s: PoolSettings, onError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: s.poolMax,
    connectionTimeoutMillis: s.connectTimeoutMs,
    statement_timeout: s.statementTimeoutMs,
    idle_in_transaction_session_timeout: s.idleInTransactionTimeoutMs,
    // A little longer than the server's cap, for a server that stopped answering altogether.
    query_timeout: s.statementTimeoutMs + 5_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  pool.on('connect', (client) => client.on('error', onError));
  pool.on('error', onError);
  return pool;
}

/** The database holds raw params (secrets at rest): it, its WAL and the lock files are owner-only. */
function privateFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal', '.lock', '.lock-journal', '.owner']) {
    try {
      fs.chmodSync(file + suffix, 0o600);
    } catch {
      // absent (not every suffix exists in every journal mode)
    }
  }
}

export async function openStore(url: string, opts: OpenOptions = {}): Promise<Store> {
  const file = sqlitePath(url);
  let store: Store;
  if (file !== null) {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new SQLite(file, { timeout: 5000 });
    sqlite.pragma('journal_mode = WAL');
    // FULL: a commit survives power loss, as an accepted state must. NORMAL only on request.
    sqlite.pragma(`synchronous = ${opts.durable === false ? 'NORMAL' : 'FULL'}`);
    sqlite.pragma('foreign_keys = ON');
    privateFiles(file);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    store = { db, dialect: 'sqlite', file: path.resolve(file), close: () => db.destroy() };
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    const onError = opts.onConnectionError ?? (() => undefined);
    const pool = postgresPool(url, opts.pool ?? DEFAULT_POOL, onError);
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
