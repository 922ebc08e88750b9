// Freezes (SPEC §13.2): which freezes are in force at a time and hold an attempt, and what the freeze
// gate says about it. Pure: the time is passed in (the database's clock), nothing is read or written.
import type { AttemptKind } from './types.ts';

export type FreezeWhen = 'queue' | 'reject';

/** Which attempts a freeze holds. An empty match (no key set) holds every attempt. */
export interface FreezeMatch {
  plans?: string[];
  /** Every label listed must be on the deployment with this value. */
  labels?: Record<string, string>;
  /** Lifeline's addition to SPEC's match: only these kinds (e.g. teardown during an exam). */
  kinds?: AttemptKind[];
}

export interface Freeze {
  name: string;
  match: FreezeMatch;
  /** ms since the epoch; null = in force from the moment it exists */
  fromMs: number | null;
  /** ms since the epoch: the freeze ends here (exclusive) */
  untilMs: number;
  when: FreezeWhen;
  /** `config` (the file's `freezes:`) or `api` (POST /v1/freezes) */
  source: 'config' | 'api';
  /** ms since the epoch when an API freeze was lifted; null while it stands */
  liftedMs?: number | null;
}

/** What the gate looks at of an attempt. */
export interface FreezeSubject {
  plan: string;
  labels: Record<string, string>;
  kind: AttemptKind;
}

export function inForce(f: Freeze, nowMs: number): boolean {
  if (f.liftedMs !== undefined && f.liftedMs !== null) return false;
  return (f.fromMs === null || f.fromMs <= nowMs) && nowMs < f.untilMs;
}

export function matches(f: Freeze, s: FreezeSubject): boolean {
  const m = f.match;
  if (m.plans && !m.plans.includes(s.plan)) return false;
  if (m.kinds && !m.kinds.includes(s.kind)) return false;
  if (m.labels) {
    for (const [k, v] of Object.entries(m.labels)) {
      if (!Object.hasOwn(s.labels, k) || s.labels[k] !== v) return false;
    }
  }
  return true;
}

/** The freezes in force at `nowMs` that hold this attempt. */
export function holding(freezes: readonly Freeze[], s: FreezeSubject, nowMs: number): Freeze[] {
  return freezes.filter((f) => inForce(f, nowMs) && matches(f, s));
}

export interface FreezeGateInput {
  subject: FreezeSubject;
  /** The attempt was asked with force by an admin: a freeze lets it pass. */
  adminForce: boolean;
  /** Started by the automatic retry (SPEC §9.1): it waits for the freeze's end, never refused. */
  retry: boolean;
}

export type FreezeGate =
  | { open: true }
  | { open: false; wait: true; detail: { freeze: string; until: string } }
  | { open: false; wait: false; code: 'FROZEN'; message: string; detail: { freeze: string; until: string } };

/**
 * The freeze gate of one attempt at `nowMs`. Several freezes may hold it: a `reject` one refuses it
 * (unless it is a retry, which waits), else it waits and names the freeze that ends last, since it
 * waits for every one of them.
 */
export function decideFreezeGate(
  freezes: readonly Freeze[],
  input: FreezeGateInput,
  nowMs: number,
): FreezeGate {
  if (input.adminForce) return { open: true };
  const held = holding(freezes, input.subject, nowMs);
  if (held.length === 0) return { open: true };
  const rejecting = input.retry ? [] : held.filter((f) => f.when === 'reject');
  if (rejecting.length > 0) {
    const f = latest(rejecting);
    const until = new Date(f.untilMs).toISOString();
    return {
      open: false,
      wait: false,
      code: 'FROZEN',
      message: `freeze "${f.name}" is in force until ${until}: no ${input.subject.kind} of this deployment may start (an admin may pass force)`,
      detail: { freeze: f.name, until },
    };
  }
  const f = latest(held);
  return { open: false, wait: true, detail: { freeze: f.name, until: new Date(f.untilMs).toISOString() } };
}

function latest(list: readonly Freeze[]): Freeze {
  return list.reduce((a, b) =>
    b.untilMs > a.untilMs || (b.untilMs === a.untilMs && b.name < a.name) ? b : a,
  );
}

/**
 * The next moment, after `nowMs`, at which the set of freezes in force changes (one starts or ends):
 * when a timer should look at the waiting attempts again. null when none is scheduled.
 */
export function nextChange(freezes: readonly Freeze[], nowMs: number): number | null {
  let next: number | null = null;
  for (const f of freezes) {
    if (f.liftedMs !== undefined && f.liftedMs !== null) continue;
    for (const t of [f.fromMs, f.untilMs]) {
      if (t !== null && t > nowMs && (next === null || t < next)) next = t;
    }
  }
  return next;
}
