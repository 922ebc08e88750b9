// What the run dir and /proc say about an attempt's processes: alive, started when, still starting.
import fs from 'node:fs';
import { startingUntil } from '../../domain/start-deadline.ts';
import { isAlive, readStat } from '../../runner/identity.ts';
import { readSupervisor, runDirPaths } from '../../runner/rundir.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import { clockNow, nowIso } from '../ids.ts';
import type { Host } from './host.ts';
import type { Watch } from './watches.ts';

/** When the plan started: its identity file is written just before the exec, whenever we look. */
export function startedAt(dir: string): string {
  try {
    return fs.statSync(runDirPaths(dir).process).mtime.toISOString();
  } catch {
    return nowIso();
  }
}

export function supervisorAlive(dir: string): boolean {
  const sup = readSupervisor(dir);
  return sup !== null && isAlive(sup);
}

/**
 * Until when (on the process's clock) a queued attempt with no plan identity yet counts as starting,
 * not lost: the start-deadline rule, with what this instance knows. A supervisor that is alive, or
 * that this instance forked and has not been told is gone, is starting; a request still waiting on the
 * launcher has the deadline from the later of its asking and the launcher's last progress.
 */
export function attemptStartingUntil(host: Host, row: AttemptsTable, w: Watch, alive: boolean): number {
  const now = Date.now();
  return startingUntil(
    {
      now,
      // queued_at (or opened_at, when gates held it: SPEC §13) is on this instance's clock (nowIso);
      // timers run on the process's.
      queuedAt: Date.parse(row.opened_at ?? row.queued_at) - (clockNow() - now),
      progress: w.launchedAt > 0 ? [w.launchedAt, host.launcher.lastProgressAt()] : [],
      starting: alive || (w.launchedPid > 0 && readStat(w.launchedPid) !== null),
    },
    host.ctx.config.startDeadlineMs,
  );
}
