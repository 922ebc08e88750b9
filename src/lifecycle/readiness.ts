// Readiness of this instance: the store answers and the data dir is writable.
import fs from 'node:fs';
import type { Ctx } from './context.ts';

export async function readiness(ctx: Ctx): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  const checks: Record<string, boolean> = { db: false, data_dir: false };
  try {
    await ctx.store.db.selectFrom('counters').select('value').limit(1).execute();
    checks.db = true;
  } catch {
    checks.db = false;
  }
  try {
    fs.accessSync(ctx.config.dataDir, fs.constants.W_OK);
    checks.data_dir = true;
  } catch {
    checks.data_dir = false;
  }
  return { ready: Object.values(checks).every(Boolean), checks };
}
