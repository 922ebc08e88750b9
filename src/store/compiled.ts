// Hot statements compiled once per dialect and statement shape, then re-run with new parameters (issue 8:
// building and compiling a Kysely query took more CPU than SQLite took to run it). The SQL still comes
// from the query builder; the first compile of each shape checks that the parameters the caller lays out
// are exactly the builder's, so a reused statement can never bind a value to the wrong column.
import type { Compilable, CompiledQuery, Kysely, QueryResult, Transaction } from 'kysely';
import type { Database } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** Per dialect adapter (one per opened store): shape key → compiled statement. */
const cache = new WeakMap<object, Map<string, CompiledQuery>>();

/**
 * Runs the statement `build()` would make, with `params` as its parameters. `key` names the statement's
 * shape: two calls with one key must build the same SQL (only the parameter values differ).
 */
export function runCompiled<R>(
  db: Db,
  key: string,
  params: readonly unknown[],
  build: () => Compilable<R>,
): Promise<QueryResult<R>> {
  const adapter = db.getExecutor().adapter;
  let shapes = cache.get(adapter);
  if (!shapes) {
    shapes = new Map();
    cache.set(adapter, shapes);
  }
  const hit = shapes.get(key) as CompiledQuery<R> | undefined;
  if (hit)
    return db.executeQuery<R>({ query: hit.query, queryId: hit.queryId, sql: hit.sql, parameters: params });
  const q = build().compile();
  if (q.parameters.length !== params.length || q.parameters.some((p, i) => p !== params[i])) {
    throw new Error(
      `compiled statement ${key}: the parameters given are not the ones the query builder made`,
    );
  }
  shapes.set(key, q);
  return db.executeQuery<R>(q);
}

/**
 * `insert into <table> (<columns of the first row>) values (…), …` for rows of one shape (the same
 * defined columns, in the same order), from a statement compiled once per table, columns and row count.
 * Rows of mixed shapes go through the builder as they are.
 */
export async function insertRows<T extends keyof Database & string>(
  db: Db,
  table: T,
  rows: readonly Database[T][],
): Promise<void> {
  const columns = definedKeys(rows[0] as object);
  const params: unknown[] = [];
  for (const row of rows) {
    const r = row as unknown as Record<string, unknown>;
    let n = 0;
    for (const c in r) if (r[c] !== undefined) n++;
    const at = params.length;
    for (const c of columns) params.push(r[c]);
    if (n !== columns.length || params.indexOf(undefined, at) !== -1) {
      await db
        .insertInto(table)
        .values(rows as never)
        .execute();
      return;
    }
  }
  await runCompiled(db, `insert ${table} (${columns.join(',')}) x${rows.length}`, params, () =>
    db.insertInto(table).values(rows as never),
  );
}

function definedKeys(row: object): string[] {
  const keys: string[] = [];
  for (const [k, v] of Object.entries(row)) if (v !== undefined) keys.push(k);
  return keys;
}
