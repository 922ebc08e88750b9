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
  return {
    db: `sqlite:${path.join(dir, 'lifeline.db')}`,
    data_dir: opts.dataDir ?? path.join(dir, 'data'),
    durable_commits: durableCommits,
    plans: opts.plans,
    ...opts.extra,
  };
}

/** Writes `config` to `<dir>/lifeline.yaml` and returns that path. */
export function writeConfigFile(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, 'lifeline.yaml');
  fs.writeFileSync(file, stringify(config));
  return file;
}
