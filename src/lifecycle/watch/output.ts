// Output ingestion for the watcher: one bounded transaction per call, its failure contained.
import { isStoreUnavailable } from '../../store/errors.ts';
import { runDirPaths } from '../../runner/rundir.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import fs from 'node:fs';
import { ingestOutput, skipOutput } from '../attempt-writes.ts';
import type { Host } from './host.ts';
import { SIGNAL_RETRY_MS } from './signals.ts';
import type { Watch } from './watches.ts';

/** Output that fails this many times in a row (not a store outage) is skipped, marked, so the attempt can end. */
const INGEST_GIVE_UP = 3;
/** At most one log line per attempt this often for repeated ingestion failures. */
const INGEST_LOG_MS = 10_000;

function size(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

export function hasNewOutput(row: AttemptsTable): boolean {
  const f = runDirPaths(row.run_dir!);
  return (
    size(f.stdout) > Number(row.stdout_offset) ||
    size(f.stderr) > Number(row.stderr_offset) ||
    size(f.events) > Number(row.events_offset)
  );
}

/**
 * One ingestion transaction, its failure contained: a store outage is left to the next look (the
 * output waits on disk); any other failure is logged (rate-limited) and, after INGEST_GIVE_UP in a
 * row, the unreadable output is skipped with a marker so the attempt's end is never blocked by it.
 * Returns whether there may be more to read right away.
 */
export async function ingest(host: Host, id: string, w: Watch, final: boolean): Promise<boolean> {
  const { ctx } = host;
  try {
    const more = await ingestOutput(ctx, id, final);
    w.ingestFailures = 0;
    return more;
  } catch (err) {
    if (isStoreUnavailable(err)) throw err;
    w.ingestFailures++;
    const now = Date.now();
    if (now - w.ingestLoggedAt >= INGEST_LOG_MS) {
      w.ingestLoggedAt = now;
      ctx.log.error(
        { attempt: id, err: (err as Error).message, failures: w.ingestFailures },
        'output ingestion failed',
      );
    }
    if (w.ingestFailures < INGEST_GIVE_UP) {
      host.watches.wakeAt(id, w, now + SIGNAL_RETRY_MS);
      return false;
    }
    w.ingestFailures = 0;
    await skipOutput(ctx, id, (err as Error).message);
    return true;
  }
}
