// Stopped means stopped (issue 17): once an attempt is recorded `cancelled` or `failed`/`timeout`,
// nothing of its plan's process group or session may be alive, and no child of a stubborn attempt
// (plans/work.sh, argv[0] `lifeline-chaos-stubborn-<attempt id>`, which ignores SIGTERM) either.
// Looked at whenever such an end is delivered to the webhook receiver, and over every attempt at the end.
import fs from 'node:fs';
import path from 'node:path';
import { groupMembers } from '../src/runner/identity.ts';
import { readProcess } from '../src/runner/rundir.ts';

export const STUBBORN_MARK = 'lifeline-chaos-stubborn-';

/** An end after which the plan's processes must all be gone. */
export const isStopped = (state: string, reason: string | null) =>
  state === 'cancelled' || (state === 'failed' && reason === 'timeout');

/** Live pids of the attempt: members of the recorded plan's group or session, and its marked child. */
export function leftoversOf(attemptId: string, runDir: string | null): number[] {
  const pids = new Set<number>();
  const proc = runDir ? readProcess(runDir) : null;
  if (proc) for (const m of groupMembers(proc)) pids.add(m.pid);
  for (const pid of markedAlive(STUBBORN_MARK + attemptId)) pids.add(pid);
  return [...pids].sort((a, b) => a - b);
}

/** Live (not zombie) processes whose argv[0] is `mark`. */
function markedAlive(mark: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv0 = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')[0];
      if (argv0 !== mark) continue;
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 1).trim()[0];
      if (state !== 'Z' && state !== 'X') out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The attempt's run dir under one of the instances' data dirs, if it is there. */
export function runDirOf(dataDirs: string[], attemptId: string): string | null {
  for (const d of dataDirs) {
    const dir = path.join(d, 'attempts', attemptId);
    if (fs.existsSync(dir)) return dir;
  }
  return null;
}
