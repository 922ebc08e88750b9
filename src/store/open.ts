// Opens the database named by a `sqlite:` or `postgres://` URL and brings its schema up to date.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import type pg from 'pg';
import { pgModule } from './pg.ts';
import {
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type Migration,
} from 'kysely';
import { StoreFileGone } from './errors.ts';
import type { Database } from './schema.ts';
import * as m001 from './migrations/001_initial.ts';
import * as m002 from './migrations/002_attempt_detail.ts';
import * as m003 from './migrations/003_event_indexes.ts';
import * as m004 from './migrations/004_deployment_labels.ts';
import * as m005 from './migrations/005_log_offsets.ts';
import * as m006 from './migrations/006_webhooks.ts';
import * as m007 from './migrations/007_rollback_of.ts';
import * as m008 from './migrations/008_lease_epoch.ts';
import * as m010 from './migrations/010_secret_params.ts';
import * as m011 from './migrations/011_retry.ts';
import * as m012 from './migrations/012_log_archive.ts';
import * as m013 from './migrations/013_runner_event_cap.ts';
import * as m014 from './migrations/014_outputs.ts';
import * as m015 from './migrations/015_stacks.ts';
import * as m015b from './migrations/015b_run_cancel.ts';
import * as m017 from './migrations/017_drift.ts';
import * as m016 from './migrations/016_gates.ts';
import * as m016b from './migrations/016b_freezes.ts';

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
  /** Throws when the store cannot hold writes (SQLite: its file was deleted or replaced). */
  check(): void;
  close(): Promise<void>;
}

const MIGRATIONS: Record<string, Migration> = {
  '001_initial': m001,
  '002_attempt_detail': m002,
  '003_event_indexes': m003,
  '004_deployment_labels': m004,
  '005_log_offsets': m005,
  '006_webhooks': m006,
  '007_rollback_of': m007,
  '008_lease_epoch': m008,
  '010_secret_params': m010,
  '011_retry': m011,
  '012_log_archive': m012,
  '013_runner_event_cap': m013,
  '014_outputs': m014,
  '015_stacks': m015,
  '015b_run_cancel': m015b,
  '017_drift': m017,
  '016_gates': m016,
  '016b_freezes': m016b,
};

export function sqlitePath(url: string): string | null {
  return url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : null;
}

export interface OpenOptions {
  durable?: boolean;
  pool?: PoolSettings;
  /** Told about connection errors outside any query (a lost idle connection); they are outages, not crashes. */
  onConnectionError?: (err: Error) => void;
  /** Told once when the SQLite file this process holds is no longer the file at its path. */
  onFileGone?: (err: Error) => void;
}

/** How often a plain query re-checks the SQLite file's identity; every write transaction checks. */
const FILE_CHECK_MS = 200;

/**
 * Watches that the SQLite file held open is still the file at its path (same device and inode). A file
 * deleted or replaced under the server would take every later commit with it; once seen, the store stays
 * refused until a restart, since the handle still points at the old inode.
 */
class FileIdentity {
  private readonly dev: number;
  private readonly ino: number;
  private checkedAt = 0;
  private gone: StoreFileGone | null = null;

  constructor(
    private readonly file: string,
    private readonly onGone: (err: Error) => void,
  ) {
    const st = fs.statSync(file);
    this.dev = st.dev;
    this.ino = st.ino;
  }

  check(force = true): void {
    if (this.gone) throw this.gone;
    const now = Date.now();
    if (!force && now - this.checkedAt < FILE_CHECK_MS) return;
    this.checkedAt = now;
    let why: string | null = null;
    try {
      const st = fs.statSync(this.file);
      if (st.dev !== this.dev || st.ino !== this.ino) why = 'was replaced by another file';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      why = 'was deleted';
    }
    if (why === null) return;
    this.gone = new StoreFileGone(this.file, why);
    this.onGone(this.gone);
    throw this.gone;
  }
}

/**
 * kysely's SqliteDriver, with two guards:
 * - on SQLITE_FULL, SQLITE_IOERR and a few others SQLite has already rolled the transaction back, and
 *   kysely's ROLLBACK then fails with "cannot rollback - no transaction is active", an error that
 *   replaces the original (the caller would see a bug, 500, instead of an outage, 503). The rollback is
 *   skipped when no transaction is open, so the original error reaches the caller;
 * - the file identity is checked before each write transaction and, at most every FILE_CHECK_MS,
 *   before other queries.
 * BEGIN and COMMIT run as statements prepared once (kysely builds a query object for each).
 */
class GuardedSqliteDriver extends SqliteDriver {
  private readonly begin: SQLite.Statement;
  private readonly commit: SQLite.Statement;

  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly identity: FileIdentity,
  ) {
    super({ database: reusingStatements(sqlite) });
    this.begin = sqlite.prepare('begin');
    this.commit = sqlite.prepare('commit');
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    const conn = await super.acquireConnection();
    try {
      this.identity.check(false);
    } catch (err) {
      await super.releaseConnection();
      throw err;
    }
    return conn;
  }

  override async beginTransaction(): Promise<void> {
    this.identity.check(true);
    this.begin.run();
  }

  override async commitTransaction(): Promise<void> {
    this.commit.run();
  }

  override async rollbackTransaction(conn: DatabaseConnection): Promise<void> {
    if (!this.sqlite.inTransaction) return;
    await super.rollbackTransaction(conn);
  }
}

class GuardedSqliteDialect extends SqliteDialect {
  constructor(
    private readonly sqlite: SQLite.Database,
    private readonly identity: FileIdentity,
  ) {
    super({ database: sqlite });
  }

  override createDriver(): Driver {
    return new GuardedSqliteDriver(this.sqlite, this.identity);
  }
}

/**
 * A bounded pool with server-side timeouts. Every client gets an error listener for its whole life: pg
 * emits 'error' on a client whose connection drops (a database restart sends 57P01 to each session),
 * and an unheard 'error' event would end the process. The failing query, if any, still rejects, and
 * pg-pool drops the broken client, so the next checkout opens a fresh connection.
 */
export function postgresPool(url: string, s: PoolSettings, onError: (err: Error) => void): pg.Pool {
  const pool = new (pgModule().Pool)({
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

/**
 * Kysely prepares every query anew; a better-sqlite3 statement can be run again with new parameters, so
 * the most recent ones are kept (issue 8: preparing was a measurable share of each write). A statement
 * still iterating (a streamed read) is never handed out twice.
 */
function reusingStatements(sqlite: SQLite.Database, max = 256) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string): SQLite.Statement {
      const hit = cache.get(sql);
      if (hit) return hit.busy ? sqlite.prepare(sql) : hit;
      // Oldest first out: a hot statement pushed out by 256 others is prepared again, no more.
      const stmt = sqlite.prepare(sql);
      cache.set(sql, stmt);
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return stmt;
    },
  };
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
    // No other process listens on SQLite (one instance per file): the counter update's notify is a no-op.
    sqlite.function('pg_notify', { varargs: true }, () => null);
    privateFiles(file);
    const identity = new FileIdentity(path.resolve(file), opts.onFileGone ?? (() => undefined));
    const db = new Kysely<Database>({ dialect: new GuardedSqliteDialect(sqlite, identity) });
    store = {
      db,
      dialect: 'sqlite',
      file: path.resolve(file),
      check: () => identity.check(true),
      close: () => db.destroy(),
    };
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    const onError = opts.onConnectionError ?? (() => undefined);
    const pool = postgresPool(url, opts.pool ?? DEFAULT_POOL, onError);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    store = { db, dialect: 'postgres', file: null, check: () => undefined, close: () => db.destroy() };
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
