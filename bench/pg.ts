// One throwaway Postgres shared by the bench scenarios that need one (LIFELINE_BENCH_PG_URL instead, if set).
import { PgCluster, adminQuery, withDatabase } from '../test/helpers/pg.ts';

let cluster: Promise<PgCluster> | null = null;

export function pgNote(): string {
  return process.env.LIFELINE_BENCH_PG_URL
    ? 'Postgres: LIFELINE_BENCH_PG_URL'
    : 'Postgres: a throwaway local cluster made as the tests make it (fsync off, synchronous_commit off), the same for both sides';
}

/** A fresh, empty database of that name on the bench's server; returns its URL. */
export async function pgDatabase(name: string): Promise<string> {
  let server = process.env.LIFELINE_BENCH_PG_URL;
  if (!server) {
    cluster ??= PgCluster.create();
    server = (await cluster).url;
  }
  await adminQuery(server, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await adminQuery(server, `CREATE DATABASE ${name} TEMPLATE template0`);
  return withDatabase(server, name);
}

export async function closePg(): Promise<void> {
  if (cluster) await (await cluster).destroy();
  cluster = null;
}
