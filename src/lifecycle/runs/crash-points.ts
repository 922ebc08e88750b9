// Test-only crash points of a run (NODE_ENV=test, LIFELINE_TEST_CRASH_AT=<point>, and
// LIFELINE_TEST_CRASH_NTH=<n>, default 1): the process dies by SIGKILL the n-th time it reaches the
// point, so the crash tests can prove a run neither loses nor repeats a launch across a crash there.
export type RunCrashPoint =
  | 'run_launch_before_commit'
  | 'run_launch_after_commit'
  | 'run_launch_after_start'
  | 'run_end_before_commit'
  | 'run_end_after_commit';

const AT = process.env.NODE_ENV === 'test' ? process.env.LIFELINE_TEST_CRASH_AT : undefined;
const NTH = Number(process.env.LIFELINE_TEST_CRASH_NTH ?? 1) || 1;
let reached = 0;

export function runCrashPoint(point: RunCrashPoint): void {
  if (AT !== point) return;
  reached += 1;
  if (reached === NTH) process.kill(process.pid, 'SIGKILL');
}
