// A stack's state (SPEC §12.3) and the decisions on stack writes. Pure: no I/O, no clock.
import type { Refusal } from './transitions.ts';
import { isBusy, type Caller } from './transitions.ts';
import type { DeploymentState } from './types.ts';

export const STACK_STATES = [
  'pending',
  'deploying',
  'ready',
  'partial',
  'failed',
  'unknown',
  'tearing_down',
  'torn_down',
] as const;
export type StackState = (typeof STACK_STATES)[number];

export type RunKind = 'deploy' | 'teardown';

/** What moved a stack's state: the triggers of its `state_transition` events. */
export type StackTrigger = 'created' | 'unit_changed' | 'units_changed' | 'run_started' | 'run_ended';

/**
 * SPEC §12.3: a run active → its kind's state; else any unit unknown → unknown; all ready → ready;
 * all pending → pending; all torn_down or pending (one torn_down at least) → torn_down; one ready at
 * least → partial; else failed.
 */
export function stackStateOf(activeRun: RunKind | null, units: readonly DeploymentState[]): StackState {
  if (activeRun === 'deploy') return 'deploying';
  if (activeRun === 'teardown') return 'tearing_down';
  let ready = 0;
  let pending = 0;
  let tornDown = 0;
  for (const s of units) {
    if (s === 'unknown') return 'unknown';
    if (s === 'ready') ready++;
    else if (s === 'pending') pending++;
    else if (s === 'torn_down') tornDown++;
  }
  const n = units.length;
  if (ready === n) return 'ready';
  if (pending === n) return 'pending';
  if (pending + tornDown === n) return 'torn_down';
  if (ready > 0) return 'partial';
  return 'failed';
}

export interface StackChange {
  from: StackState | null;
  to: StackState;
  trigger: StackTrigger;
}

/** The change to write when the stack's state moves; null when it stays. */
export function decideStackState(
  current: StackState | null,
  activeRun: RunKind | null,
  units: readonly DeploymentState[],
  trigger: StackTrigger,
): StackChange | null {
  const to = stackStateOf(activeRun, units);
  return to === current ? null : { from: current, to, trigger };
}

/** Folds a stack's state_transition events (seq order) into its state (invariant 10). */
export function foldStack(events: readonly { type: string; data: { entity?: unknown; to?: unknown } }[]): {
  state: StackState | null;
  transitions: number;
} {
  let state: StackState | null = null;
  let transitions = 0;
  for (const e of events) {
    if (e.type !== 'state_transition' || e.data.entity !== 'stack') continue;
    state = e.data.to as StackState;
    transitions += 1;
  }
  return { state, transitions };
}

export type StackDecision = { ok: true } | { ok: false; refusal: Refusal };

const refuse = (code: Refusal['code'], detail: string): StackDecision => ({
  ok: false,
  refusal: { code, detail },
});
const ALLOW: StackDecision = { ok: true };

/** May a unit be removed from its stack (its deployment deleted)? Only when nothing of it stands. */
export function isRemovable(state: DeploymentState): boolean {
  return state === 'pending' || state === 'torn_down';
}

export interface UnitState {
  name: string;
  state: DeploymentState;
}

function runGuard(activeRunId: string | null): StackDecision | null {
  return activeRunId === null
    ? null
    : refuse('STACK_RUN_IN_PROGRESS', `run ${activeRunId} is active on this stack; wait for it or cancel it`);
}

/** PUT of a new spec: no run active, and every unit it drops removable (else all of them listed). */
export function decideStackUpdate(activeRunId: string | null, removed: readonly UnitState[]): StackDecision {
  const busy = runGuard(activeRunId);
  if (busy) return busy;
  const standing = removed.filter((u) => !isRemovable(u.state));
  if (standing.length > 0) {
    return refuse(
      'UNIT_NOT_TORN_DOWN',
      `units removed from the spec must be pending or torn_down first: ${standing.map((u) => `${u.name} (${u.state})`).join(', ')}`,
    );
  }
  return ALLOW;
}

/**
 * DELETE of a stack and its units: no run active; every unit pending or torn_down unless `force`
 * (admin); even forced, no unit with an attempt running (as for one deployment).
 */
export function decideStackDelete(
  activeRunId: string | null,
  units: readonly UnitState[],
  force: boolean,
  caller: Caller,
): StackDecision {
  if (force && !caller.isAdmin) return refuse('FORBIDDEN', 'force requires the admin role');
  const busyRun = runGuard(activeRunId);
  if (busyRun) return busyRun;
  const active = units.filter((u) => isBusy(u.state));
  if (active.length > 0) {
    return refuse(
      'INVALID_TRANSITION',
      `cannot delete while unit attempts are active: ${active.map((u) => `${u.name} (${u.state})`).join(', ')}`,
    );
  }
  const standing = units.filter((u) => !isRemovable(u.state));
  if (standing.length > 0 && !force) {
    return refuse(
      'UNIT_NOT_TORN_DOWN',
      `every unit must be pending or torn_down (admins may force): ${standing.map((u) => `${u.name} (${u.state})`).join(', ')}`,
    );
  }
  return ALLOW;
}

/** A direct write on a unit while its stack's run is active (SPEC §12.4). */
export function decideUnitWrite(stackName: string, activeRunId: string | null): StackDecision {
  return activeRunId === null
    ? ALLOW
    : refuse(
        'STACK_RUN_IN_PROGRESS',
        `this deployment is a unit of stack ${stackName}, whose run ${activeRunId} is active`,
      );
}

/**
 * The `unknown` guard lifted to the stack (SPEC §12.3): a stack deploy or teardown while it is
 * `unknown` needs `force` (admin), which then forces only the units that are `unknown`.
 */
export function decideStackUnknown(state: StackState, force: boolean, caller: Caller): StackDecision {
  if (force && !caller.isAdmin) return refuse('FORBIDDEN', 'force requires the admin role');
  if (state === 'unknown' && !force) {
    return refuse(
      'STACK_UNKNOWN_STATE',
      'a unit of this stack is unknown: resolve it, or force (admin) to act on the unknown units',
    );
  }
  return ALLOW;
}
