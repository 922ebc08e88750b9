// The two stores every store-, lifecycle- and HTTP-level suite runs against. A test data dir maps to one
// database: SQLite's file inside it, or a Postgres database of its own on the run's server (created on
// first use), so a restart on the same dir finds the same data and test files stay independent.
import path from 'node:path';
import { inject } from 'vitest';
import { seedSqlite } from './config.ts';
import { databaseName, ensureDatabase } from './pg.ts';

export type TestDialect = 'sqlite' | 'postgres';
export const DIALECTS: readonly TestDialect[] = ['sqlite', 'postgres'];

/** The run's Postgres server; throws (so the test fails, never skips) when it could not be started. */
export function pgServerUrl(): string {
  const url = inject('pgServerUrl');
  if (!url)
    throw new Error(inject('pgError') || 'no PostgreSQL server for this run (see test/setup/postgres.ts)');
  return url;
}

export async function dbUrlFor(dialect: TestDialect, dir: string): Promise<string> {
  if (dialect === 'sqlite') {
    seedSqlite(path.join(dir, 'lifeline.db'));
    return `sqlite:${path.join(dir, 'lifeline.db')}`;
  }
  const name = databaseName(inject('pgRunId'), path.resolve(dir));
  return ensureDatabase(pgServerUrl(), name, inject('pgTemplate'));
}
