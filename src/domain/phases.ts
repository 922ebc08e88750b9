// Phases of an attempt (SPEC §9.4), folded from its runner events: pure, no I/O.
// A runner event with a string `phase` starts that phase and ends the one before; one with a string
// `phase_end` naming the open phase ends it there (so a tool that reports task ends, like the Ansible
// callback in examples/ansible, gets exact durations); the last open phase ends with the attempt.

export interface Phase {
  phase: string;
  started_at: string;
  /** Null while the phase is still open (its attempt has not ended). */
  ended_at: string | null;
  duration_ms: number | null;
}

/** What the fold reads of a runner_event: when it was recorded, and the object the plan wrote. */
export interface PhaseEvent {
  at: string;
  data: Record<string, unknown>;
}

export const MAX_PHASE_NAME = 200;

/**
 * The time a plan stamped on its event (`at`, ISO 8601), else when Lifeline recorded it. Plans that care
 * about timing stamp their events: Lifeline records an event when it reads the file, which may be late.
 */
function timeOf(e: PhaseEvent): string {
  const at = e.data.at;
  if (typeof at === 'string' && at.length <= 40 && !Number.isNaN(Date.parse(at))) {
    return new Date(Date.parse(at)).toISOString();
  }
  return e.at;
}

/** Ends a phase; never before it started (events may be recorded after the attempt's end). */
function close(p: { phase: string; started_at: string }, endedAt: string | null): Phase {
  if (endedAt === null)
    return { phase: p.phase, started_at: p.started_at, ended_at: null, duration_ms: null };
  const start = Date.parse(p.started_at);
  const end = Math.max(start, Date.parse(endedAt));
  const ended = end === Date.parse(endedAt) ? endedAt : p.started_at;
  return { phase: p.phase, started_at: p.started_at, ended_at: ended, duration_ms: end - start };
}

/** Events in seq order, and when the attempt ended (null while it runs). */
export function foldPhases(events: readonly PhaseEvent[], attemptEndedAt: string | null): Phase[] {
  const out: Phase[] = [];
  let open: { phase: string; started_at: string } | null = null;
  for (const e of events) {
    const at = timeOf(e);
    const start = e.data.phase;
    const end = e.data.phase_end;
    if (typeof start === 'string') {
      if (open) out.push(close(open, at));
      open = { phase: start.slice(0, MAX_PHASE_NAME), started_at: at };
    } else if (typeof end === 'string' && open && end.slice(0, MAX_PHASE_NAME) === open.phase) {
      out.push(close(open, at));
      open = null;
    }
  }
  if (open) out.push(close(open, attemptEndedAt));
  return out;
}
