// The one way tests build a throwaway Lifeline's config: a SQLite database and a data dir inside a temp
// dir, and the plans. As an object (for configFromObject, in-process engines) or as the YAML file
// `lifeline serve --config` reads (servers the tests start as processes).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';

export function tempDir(prefix = 'lifeline-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TempConfigOptions {
  plans: Record<string, unknown>;
  /** Where attempts and workspaces go; default `<dir>/data`. */
  dataDir?: string;
  /** Further top-level settings (server, auth, reap_interval…); they win over the defaults. */
  extra?: Record<string, unknown>;
}

/**
 * Test commits run SQLite `synchronous=NORMAL` (durable_commits: false): an fsync per commit was a large
 * share of the suite's time, and nothing but power loss tells the two apart. The suites that prove
 * durability (crash, storage faults) call keepDurableCommits() first, or pass `durable_commits: true`.
 */
let durableCommits = false;

export function keepDurableCommits(): void {
  durableCommits = true;
}

export function tempConfig(dir: string, opts: TempConfigOptions): Record<string, unknown> {
  const file = path.join(dir, 'lifeline.db');
  if (opts.extra?.db === undefined) seedSqlite(file);
  return {
    db: `sqlite:${file}`,
    data_dir: opts.dataDir ?? path.join(dir, 'data'),
    durable_commits: durableCommits,
    plans: opts.plans,
    ...opts.extra,
  };
}

/**
 * A new test database starts as a copy of the run's migrated one (test/setup/sqlite-template.ts) instead
 * of running every migration again: about 25 ms of CPU per database, and the suite opens thousands. The
 * migrations still run on open (they find nothing to do); a file already there is left as it is.
 */
export function seedSqlite(file: string): void {
  const template = process.env.LIFELINE_TEST_SQLITE_TEMPLATE;
  if (!template || !fs.existsSync(path.dirname(file))) return;
  try {
    fs.copyFileSync(template, file, fs.constants.COPYFILE_EXCL);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Writes `config` to `<dir>/lifeline.yaml` and returns that path. */
export function writeConfigFile(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, 'lifeline.yaml');
  fs.writeFileSync(file, stringify(config));
  return file;
}
