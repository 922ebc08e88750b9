// Instances and their leases. Every lease time is the database's clock (SPEC §5): a heartbeat writes the
// database's `now`, and expiry is judged against the database's `now`, so no two machines' clocks are
// ever compared. On SQLite the one process's clock is the database's clock.
import { SqliteAdapter, sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import type { Database, InstancesTable } from './schema.ts';
import type { Dialect } from './open.ts';

type Db = Kysely<Database> | Transaction<Database>;

const PG_ISO = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"';

/** The database's clock, `minusMs` ago, as ISO-8601 UTC text (the format every timestamp column holds). */
export function dbNowIso(dialect: Dialect, minusMs = 0): RawBuilder<string> {
  return dbAtIso(dialect, -Math.max(0, minusMs));
}

/** The database's clock moved by `offsetMs` (later when positive), as ISO-8601 UTC text. */
export function dbAtIso(dialect: Dialect, offsetMs: number): RawBuilder<string> {
  const ms = Math.trunc(offsetMs);
  if (dialect === 'postgres') {
    return sql<string>`to_char((clock_timestamp() + ${sql.lit(ms)} * interval '1 millisecond') at time zone 'UTC', ${sql.lit(PG_ISO)})`;
  }
  const sign = ms < 0 ? '-' : '+';
  return sql<string>`strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ${sql.lit(`${sign}${Math.abs(ms) / 1000} seconds`)})`;
}

/** Which store a connection or transaction is on. */
export function dialectOf(db: Db): Dialect {
  return db.getExecutor().adapter instanceof SqliteAdapter ? 'sqlite' : 'postgres';
}

/** The database's clock now, in ms since the epoch. */
export async function selectDbNow(db: Db, dialect: Dialect): Promise<number> {
  const row = await db.selectNoFrom(dbNowIso(dialect).as('now')).executeTakeFirstOrThrow();
  return Date.parse(row.now);
}

/** The instances and the database's clock read with them: `alive` is judged on that clock only. */
export async function selectInstancesAt(
  db: Db,
  dialect: Dialect,
): Promise<{ rows: InstancesTable[]; nowMs: number }> {
  const nowMs = await selectDbNow(db, dialect);
  return { rows: await selectInstances(db), nowMs };
}

export type InstanceInfoRow = Omit<InstancesTable, 'last_seen_at' | 'epoch'>;

/**
 * Registers (or re-registers) an instance: a new lease epoch and a heartbeat at the database's now.
 * Returns the epoch, which fences every write this registration makes about its attempts. With `ttlMs`,
 * null (and nothing written) when the id's lease is still live, on the database's clock, for another
 * host or data dir: two servers would share one identity (a copied instance.json). The same host and
 * data dir is the same server restarted: the data dir's lock proves the last holder gone.
 */
export async function registerInstance(db: Db, dialect: Dialect, row: InstanceInfoRow): Promise<number>;
export async function registerInstance(
  db: Db,
  dialect: Dialect,
  row: InstanceInfoRow,
  ttlMs: number,
): Promise<number | null>;
export async function registerInstance(
  db: Db,
  dialect: Dialect,
  row: InstanceInfoRow,
  ttlMs?: number,
): Promise<number | null> {
  const now = dbNowIso(dialect);
  const res = await db
    .insertInto('instances')
    .values({ ...row, last_seen_at: now, epoch: 1 })
    .onConflict((oc) => {
      const update = oc.column('id').doUpdateSet((eb) => ({
        host: row.host,
        port: row.port,
        role: row.role,
        data_dir: row.data_dir,
        pid: row.pid,
        started_at: row.started_at,
        last_seen_at: now,
        epoch: eb('instances.epoch', '+', 1),
      }));
      if (ttlMs === undefined) return update;
      return update.where((eb) =>
        eb.or([
          eb('instances.last_seen_at', '<', dbNowIso(dialect, ttlMs)),
          eb.and([eb('instances.host', '=', row.host), eb('instances.data_dir', '=', row.data_dir)]),
        ]),
      );
    })
    .returning('epoch')
    .executeTakeFirst();
  return res ? Number(res.epoch) : null;
}

/** One instance's row, if registered. */
export async function selectInstance(db: Db, id: string): Promise<InstancesTable | undefined> {
  return db.selectFrom('instances').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * The lease heartbeat: extends the lease of registration `epoch` only while it has not lapsed. False when
 * it had (peers may already have taken or given up its attempts): the instance must re-register.
 */
export async function renewLease(
  db: Db,
  dialect: Dialect,
  id: string,
  epoch: number,
  ttlMs: number,
): Promise<boolean> {
  const res = await db
    .updateTable('instances')
    .set({ last_seen_at: dbNowIso(dialect) })
    .where('id', '=', id)
    .where('epoch', '=', epoch)
    .where('last_seen_at', '>=', dbNowIso(dialect, ttlMs))
    .executeTakeFirst();
  return Number(res.numUpdatedRows) === 1;
}

export async function selectInstances(db: Db): Promise<InstancesTable[]> {
  return db.selectFrom('instances').selectAll().orderBy('started_at', 'desc').execute();
}
