// Readiness of this instance: the store answers and holds the file it opened, and the file systems of
// the data dir and the SQLite database have room and take writes.
import fs from 'node:fs';
import path from 'node:path';
import type { Ctx } from './context.ts';

/** Below this much free space a file system counts as full: SQLite and run dirs need room to append. */
const MIN_FREE_BYTES = 1024 * 1024;

function hasRoom(dir: string): boolean {
  const st = fs.statfsSync(dir);
  return st.bavail * st.bsize >= MIN_FREE_BYTES;
}

/** The dir takes a small write (root ignores permissions, but not a read-only or failing file system). */
function writable(dir: string): boolean {
  const probe = path.join(dir, `.ready-${process.pid}`);
  try {
    fs.writeFileSync(probe, 'ok');
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

export async function readiness(ctx: Ctx): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const checks: Record<string, boolean> = { db: false, data_dir: false };
  try {
    ctx.store.check();
    await ctx.store.db.selectFrom('counters').select('value').limit(1).execute();
    checks.db = ctx.store.file === null || hasRoom(path.dirname(ctx.store.file));
  } catch {
    checks.db = false;
  }
  try {
    fs.accessSync(ctx.config.dataDir, fs.constants.W_OK);
    checks.data_dir = hasRoom(ctx.config.dataDir) && writable(ctx.config.dataDir);
  } catch {
    checks.data_dir = false;
  }
  return { ready: Object.values(checks).every(Boolean), checks };
}
