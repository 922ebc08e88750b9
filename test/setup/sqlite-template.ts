// vitest globalSetup: one migrated SQLite database per run, which test/helpers/config.ts copies for each
// new test database (LIFELINE_TEST_SQLITE_TEMPLATE, inherited by the workers and what they start).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore } from '../../src/store/open.ts';

export default async function setup(): Promise<() => void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-sqlite-template-'));
  const file = path.join(dir, 'lifeline.db');
  const store = await openStore(`sqlite:${file}`);
  // Closing checkpoints the WAL into the file, so the file alone is the whole database.
  await store.close();
  process.env.LIFELINE_TEST_SQLITE_TEMPLATE = file;
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
