// vitest globalSetup: one PostgreSQL server for the whole run. Unless LIFELINE_TEST_PG_URL names one, a
// throwaway cluster is started here and removed at the end. When it cannot start, the error is handed to
// the tests instead of thrown: every Postgres test then fails with it (never skips), SQLite tests still run.
import type { TestProject } from 'vitest/node';
import { openStore } from '../../src/store/open.ts';
import { dropRunDatabases, ensureDatabase, newRunId, PgCluster, templateName } from '../helpers/pg.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the run's server, or '' when none could be started (then pgError says why). */
    pgServerUrl: string;
    pgRunId: string;
    pgError: string;
    /** The run's migrated database, which every test database is copied from. */
    pgTemplate: string;
  }
}

/** Migrates the run's template once, so each test database is a copy instead of a migration run. */
async function migratedTemplate(serverUrl: string, runId: string): Promise<string> {
  const name = templateName(runId);
  const store = await openStore(await ensureDatabase(serverUrl, name));
  await store.close();
  return name;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const runId = newRunId();
  project.provide('pgRunId', runId);
  const external = process.env.LIFELINE_TEST_PG_URL;
  if (external) {
    project.provide('pgServerUrl', external);
    project.provide('pgError', '');
    project.provide('pgTemplate', await migratedTemplate(external, runId));
    return () => dropRunDatabases(external, runId).catch(() => undefined);
  }
  let cluster: PgCluster | null = null;
  try {
    cluster = await PgCluster.create();
    project.provide('pgServerUrl', cluster.url);
    project.provide('pgError', '');
    project.provide('pgTemplate', await migratedTemplate(cluster.url, runId));
  } catch (err) {
    const msg = `could not start a throwaway PostgreSQL cluster: ${(err as Error).message}`;
    console.error(`\n[postgres] ${msg}\n`);
    project.provide('pgServerUrl', '');
    project.provide('pgError', msg);
    project.provide('pgTemplate', '');
  }
  return async () => {
    await cluster?.destroy();
  };
}
