// Stack runs (SPEC §12.4): which units a run targets, which of them may launch now, how a run ends,
// and its state transitions. Pure: no I/O, no clock. The lifecycle reads the rows, asks here, and
// writes the answer with one compare-and-set on the run's version (a launch in the same transaction
// as the unit's attempt), so whoever advances a run, and however often, the answer is the same.
import type { OnFailure } from './stack-spec.ts';
import type { RunKind } from './stack-state.ts';
import type { AttemptState, DeploymentState, ErrorCode } from './types.ts';

export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'unknown'] as const;
export type RunState = (typeof RUN_STATES)[number];

export type { OnFailure, RunKind };

/** Where a unit is in a run (SPEC §12.4 "a run's record lists every unit with its step"). */
export const STEP_STATES = [
  'waiting',
  'launched',
  'succeeded',
  'failed',
  'skipped',
  'unknown',
  'not_needed',
] as const;
export type StepState = (typeof STEP_STATES)[number];

/** One unit's step, as stored in the run's `steps` JSON. */
export interface RunStep {
  key: string;
  /** 1…count for a unit with count > 1; null for a single unit. */
  index: number | null;
  deployment_id: string;
  step: StepState;
  /** The attempt this run launched on the unit; null until it is launched. */
  attempt_id: string | null;
  /** Why a step failed without an attempt (its launch was refused), when it did. */
  detail?: string;
}

/** A unit as a run sees it when it is planned. */
export interface RunUnit {
  key: string;
  index: number | null;
  deploymentId: string;
  state: DeploymentState;
  /** `ready`, but its params changed since its last succeeded deploy. */
  paramsChanged: boolean;
  /** The deployment ids of the units it comes `after` (every `student-i` for `after: [student]`). */
  after: string[];
}

export interface RunOptions {
  units?: string[];
  all?: boolean;
  force?: boolean;
}

export interface RunRefusal {
  code: ErrorCode;
  detail: string;
  field?: string;
}

const isFinalRun = (s: RunState) => s !== 'queued' && s !== 'running';
export function isActiveRun(s: RunState): boolean {
  return !isFinalRun(s);
}

// ---- state transitions ------------------------------------------------------------------------

export type RunTrigger = 'accepted' | 'started' | 'ended' | 'cancelled';

/** The run's transitions, as data (like the deployment's in transitions.ts). */
export const RUN_TABLE: Record<RunTrigger, { from: (RunState | null)[]; to: RunState[] }> = {
  accepted: { from: [null], to: ['queued'] },
  started: { from: ['queued'], to: ['running'] },
  ended: { from: ['queued', 'running'], to: ['succeeded', 'failed', 'unknown'] },
  cancelled: { from: ['queued', 'running'], to: ['cancelled'] },
};

export interface RunChange {
  from: RunState | null;
  to: RunState;
  trigger: RunTrigger;
  reason: string | null;
}

export function runMove(
  trigger: RunTrigger,
  from: RunState | null,
  to: RunState,
  reason: string | null,
): RunChange {
  const rule = RUN_TABLE[trigger];
  if (!rule.from.includes(from) || !rule.to.includes(to)) {
    throw new Error(`run transition table violated: ${trigger} ${from} -> ${to}`);
  }
  return { from, to, trigger, reason };
}

/** Folds a run's `state_transition` events (seq order) into its state and last recorded version. */
export function foldRun(
  events: { type: string; data: { entity?: unknown; to?: unknown; version?: unknown } }[],
): {
  state: RunState | null;
  version: number;
} {
  let state: RunState | null = null;
  let version = 0;
  for (const e of events) {
    if (e.type !== 'state_transition' || e.data.entity !== 'run') continue;
    const to = e.data.to as RunState;
    const rule = Object.values(RUN_TABLE).find((r) => r.from.includes(state) && r.to.includes(to));
    if (!rule) throw new Error(`run events do not fold: ${state} -> ${to}`);
    state = to;
    version = Number(e.data.version);
  }
  return { state, version };
}

// ---- planning: the targets of a new run -------------------------------------------------------

const refuse = (code: ErrorCode, detail: string, field?: string) => ({
  ok: false as const,
  refusal: field ? { code, detail, field } : { code, detail },
});

const names = (units: RunUnit[]) =>
  units.map((u) => (u.index !== null ? `${u.key}-${u.index}` : u.key)).join(', ');

/**
 * The steps of a new run: `waiting` for its targets, `not_needed` for the rest, in the units' order.
 * Deploy targets: units not `ready`, and `ready` ones whose params changed (`all`: every unit;
 * `units`: those keys and, transitively, what they come after that is not `ready`). Teardown targets:
 * every unit that is not `torn_down` or `pending`.
 */
export function planRun(
  kind: RunKind,
  units: RunUnit[],
  options: RunOptions,
  caller: { isAdmin: boolean },
): { ok: true; steps: RunStep[] } | { ok: false; refusal: RunRefusal } {
  if (options.force && !caller.isAdmin) return refuse('FORBIDDEN', 'force requires the admin role', 'force');
  const busy = units.filter((u) => u.state === 'deploying' || u.state === 'tearing_down');
  if (busy.length > 0) {
    return refuse('ATTEMPT_IN_PROGRESS', `units with an active attempt: ${names(busy)}`);
  }
  const unknown = units.filter((u) => u.state === 'unknown');
  if (unknown.length > 0 && !options.force) {
    return refuse(
      'STACK_UNKNOWN_STATE',
      `units in state unknown: ${names(unknown)}; resolve or check them, or pass force as an admin`,
    );
  }
  let targets: Set<string>;
  if (kind === 'teardown') {
    targets = new Set(
      units.filter((u) => u.state !== 'torn_down' && u.state !== 'pending').map((u) => u.deploymentId),
    );
  } else if (options.all) {
    targets = new Set(units.map((u) => u.deploymentId));
  } else if (options.units && options.units.length > 0) {
    const keys = new Set(units.map((u) => u.key));
    const bad = options.units.findIndex((k) => !keys.has(k));
    if (bad >= 0) return refuse('VALIDATION', `no unit has the key "${options.units[bad]}"`, `units[${bad}]`);
    const byId = new Map(units.map((u) => [u.deploymentId, u] as const));
    targets = new Set();
    const todo = units.filter((u) => options.units!.includes(u.key));
    while (todo.length > 0) {
      const u = todo.pop()!;
      if (targets.has(u.deploymentId)) continue;
      targets.add(u.deploymentId);
      // What it needs that is not ready, and what that needs in turn; a ready unit needs nothing.
      for (const id of u.after) {
        const dep = byId.get(id);
        if (dep && dep.state !== 'ready') todo.push(dep);
      }
    }
  } else {
    targets = new Set(units.filter((u) => u.state !== 'ready' || u.paramsChanged).map((u) => u.deploymentId));
  }
  return {
    ok: true,
    steps: units.map((u) => ({
      key: u.key,
      index: u.index,
      deployment_id: u.deploymentId,
      step: targets.has(u.deploymentId) ? 'waiting' : 'not_needed',
      attempt_id: null,
    })),
  };
}

// ---- advancing: what moves now ----------------------------------------------------------------

export interface RunView {
  kind: RunKind;
  state: RunState;
  onFailure: OnFailure;
  cancelRequested: boolean;
  force: boolean;
  steps: RunStep[];
}

/** A unit now: its deployment's state, what it comes after, and the state of the attempt this run launched. */
export interface UnitNow {
  state: DeploymentState;
  after: string[];
  /** The state of the attempt named by the unit's step, when it has one. */
  attempt: AttemptState | null;
}

export interface Launch {
  deploymentId: string;
  /** Only an `unknown` unit of a forced run is launched with force. */
  force: boolean;
}

export interface Advance {
  /** The steps with what happened recorded (outcomes, skips; at the end, the unlaunched ones). */
  steps: RunStep[];
  /** Units that may launch now; each is launched in its own transaction, as `launched` in these steps. */
  launch: Launch[];
  /** The run's state change, when there is one (started goes with the first launch). */
  change: RunChange | null;
  /** Whether `steps` differ from the run's stored steps. */
  changed: boolean;
}

const GOAL: Record<RunKind, DeploymentState> = { deploy: 'ready', teardown: 'torn_down' };

/** A launched step, once its attempt ended (or its unit settled otherwise: a check, a late result). */
function outcome(kind: RunKind, unit: UnitNow): StepState {
  // The attempt's end and the unit's move commit together: a unit still busy was read before it.
  if (unit.state === 'deploying' || unit.state === 'tearing_down') return 'launched';
  switch (unit.attempt) {
    case 'queued':
    case 'running':
    case null:
      return 'launched';
    case 'succeeded':
      return 'succeeded';
    case 'failed':
    case 'cancelled':
      return 'failed';
    case 'unknown':
      if (unit.state === GOAL[kind]) return 'succeeded';
      if (unit.state === 'failed') return 'failed';
      return 'unknown';
  }
}

/** Whether a unit no longer holds anything back: ready (deploy), gone (teardown). */
function clear(kind: RunKind, state: DeploymentState): boolean {
  return kind === 'deploy' ? state === 'ready' : state === 'torn_down' || state === 'pending';
}

/**
 * What moves in a run now. Deploy: a waiting unit launches once every unit it comes after is `ready`;
 * teardown: once every unit that comes after it is `torn_down` or `pending`. A unit that failed stops
 * every launch (`stop`) or dooms what is behind it, `skipped` (`continue`); an `unknown` one blocks what
 * is behind it. A cancel launches nothing more. The run ends when nothing is launched and nothing can
 * launch: `cancelled` (asked), `unknown` (a unit is), `failed` (a unit failed or was skipped), else
 * `succeeded`; steps never launched are then `skipped`.
 */
export function decideAdvance(run: RunView, units: ReadonlyMap<string, UnitNow>): Advance {
  const steps = run.steps.map((s) => ({ ...s }));
  if (isFinalRun(run.state)) return { steps, launch: [], change: null, changed: false };
  const unit = (id: string): UnitNow => {
    const u = units.get(id);
    if (!u) throw new Error(`run unit ${id} is missing`);
    return u;
  };
  const byId = new Map(steps.map((s) => [s.deployment_id, s] as const));

  // What happened to launched units (an unknown step may still settle: a late result, a check).
  for (const s of steps) {
    const u = unit(s.deployment_id);
    if (s.attempt_id !== null && (s.step === 'launched' || s.step === 'unknown'))
      s.step = outcome(run.kind, u);
    // A waiting unit that is unknown (a run without force cannot launch it) is a stop sign too,
    // until something settles it.
    if (s.attempt_id === null && (s.step === 'waiting' || s.step === 'unknown')) {
      s.step = u.state === 'unknown' && !run.force ? 'unknown' : 'waiting';
    }
  }

  // Who holds a unit back: what it comes after (deploy), what comes after it (teardown).
  const blockers = new Map<string, string[]>(steps.map((s) => [s.deployment_id, []]));
  for (const s of steps) {
    for (const before of unit(s.deployment_id).after) {
      if (!blockers.has(before)) continue;
      if (run.kind === 'deploy') blockers.get(s.deployment_id)!.push(before);
      else blockers.get(before)!.push(s.deployment_id);
    }
  }
  /** A blocker that holds nothing back: settled in this run (or not part of it) and ready / gone. */
  const cleared = (id: string): boolean => {
    const st = byId.get(id)!.step;
    return (st === 'succeeded' || st === 'not_needed') && clear(run.kind, unit(id).state);
  };
  /** A blocker that can no longer clear in this run. */
  const dead = (id: string): boolean => {
    const st = byId.get(id)!.step;
    if (st === 'failed' || st === 'skipped') return true;
    return st === 'not_needed' && !clear(run.kind, unit(id).state);
  };

  if (run.onFailure === 'continue') {
    // Units behind a failed one can never launch: skipped, and so on down the line.
    for (let moved = true; moved;) {
      moved = false;
      for (const s of steps) {
        if (s.step === 'waiting' && blockers.get(s.deployment_id)!.some(dead)) {
          s.step = 'skipped';
          moved = true;
        }
      }
    }
  }
  const failedSome = steps.some(
    (s) => s.step === 'failed' || (s.step === 'waiting' && blockers.get(s.deployment_id)!.some(dead)),
  );
  const stopped = run.cancelRequested || (run.onFailure === 'stop' && failedSome);

  const launch: Launch[] = [];
  if (!stopped) {
    for (const s of steps) {
      if (s.step !== 'waiting') continue;
      if (!blockers.get(s.deployment_id)!.every(cleared)) continue;
      const state = unit(s.deployment_id).state;
      launch.push({ deploymentId: s.deployment_id, force: run.force && state === 'unknown' });
    }
  }

  let change: RunChange | null = null;
  const running = steps.some((s) => s.step === 'launched');
  if (launch.length > 0) {
    if (run.state === 'queued') change = runMove('started', 'queued', 'running', null);
  } else if (!running) {
    const end = endState(run, steps);
    change = runMove(end.to === 'cancelled' ? 'cancelled' : 'ended', run.state, end.to, end.reason);
    for (const s of steps) if (s.step === 'waiting') s.step = 'skipped';
  }
  const changed = steps.some((s, i) => s.step !== run.steps[i].step);
  return { steps, launch, change, changed };
}

function endState(run: RunView, steps: RunStep[]): { to: RunState; reason: string | null } {
  const with_ = (st: StepState) => steps.filter((s) => s.step === st).map(label);
  if (run.cancelRequested) return { to: 'cancelled', reason: 'cancel requested' };
  const unknown = with_('unknown');
  if (unknown.length > 0) return { to: 'unknown', reason: `units unknown: ${unknown.join(', ')}` };
  const failed = with_('failed');
  if (failed.length > 0) return { to: 'failed', reason: `units failed: ${failed.join(', ')}` };
  // Nothing failed, yet something could not launch (held back by a unit outside the run).
  const held = [...with_('waiting'), ...with_('skipped')];
  if (held.length > 0) return { to: 'failed', reason: `units could not launch: ${held.join(', ')}` };
  return { to: 'succeeded', reason: null };
}

function label(s: RunStep): string {
  return s.index !== null ? `${s.key}-${s.index}` : s.key;
}

/** Marks one unit launched (the write that accepts its attempt records this with the run's CAS). */
export function withLaunched(steps: RunStep[], deploymentId: string, attemptId: string): RunStep[] {
  return steps.map((s) =>
    s.deployment_id === deploymentId ? { ...s, step: 'launched', attempt_id: attemptId } : s,
  );
}

/** Marks one unit failed without an attempt: its launch was refused (plan gone, params invalid…). */
export function withRefused(steps: RunStep[], deploymentId: string, detail: string): RunStep[] {
  return steps.map((s) => (s.deployment_id === deploymentId ? { ...s, step: 'failed', detail } : s));
}

/** A cancel of the stack's active run: asked once, then the same answer. */
export function decideRunCancel(
  run: { state: RunState; cancelRequested: boolean } | null,
): { ok: true; action: 'request' | 'already_requested' } | { ok: false; refusal: RunRefusal } {
  if (!run || isFinalRun(run.state)) return refuse('NO_ACTIVE_RUN', 'the stack has no active run');
  return { ok: true, action: run.cancelRequested ? 'already_requested' : 'request' };
}

/** A new run: one active run per stack. */
export function decideRunStart(activeRun: string | null): { ok: true } | { ok: false; refusal: RunRefusal } {
  if (activeRun) return refuse('STACK_RUN_IN_PROGRESS', `run ${activeRun} is active on this stack`);
  return { ok: true };
}

/** A run as the API serves it (SPEC §12.5). */
export interface Run {
  id: string;
  stack_id: string;
  /** The stack's name. */
  stack: string;
  kind: RunKind;
  state: RunState;
  version: number;
  on_failure: OnFailure;
  options: RunOptions;
  /** Who asked for it: every unit attempt it launches is requested by them. */
  actor: string;
  reason: string | null;
  cancel_requested_at: string | null;
  /** In dependency order; `deployment` is the unit deployment's name. */
  steps: (RunStep & { deployment: string })[];
  created_at: string;
  updated_at: string;
  ended_at: string | null;
}
