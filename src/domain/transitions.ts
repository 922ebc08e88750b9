// The transition rules of SPEC §2, as data plus guards. Pure: no I/O, no clock.
// Every layer (store, runner, HTTP) asks these functions; nothing else decides.
import type { AttemptKind, AttemptReason, AttemptState, DeploymentState, ErrorCode } from './types.ts';

export type DeploymentTrigger =
  | 'created'
  | 'deploy_accepted'
  | 'deploy_succeeded'
  | 'deploy_failed'
  | 'cancelled_before_start'
  | 'outcome_lost'
  | 'teardown_accepted'
  | 'teardown_succeeded'
  | 'teardown_failed'
  | 'resolved'
  | 'late_result'
  | 'check_result';

export type AttemptTrigger =
  | 'accepted'
  | 'started'
  | 'start_failed'
  | 'cancelled_before_start'
  | 'exited'
  | 'outcome_lost'
  | 'late_result';

type To<S> = S | '*';

/** SPEC §2.1. `to: '*'` means the target comes from the guard (previous state, outcome, operator). */
export const DEPLOYMENT_TABLE: Record<
  DeploymentTrigger,
  { from: DeploymentState[]; to: To<DeploymentState> }
> = {
  created: { from: [], to: 'pending' },
  deploy_accepted: { from: ['pending', 'ready', 'failed', 'torn_down', 'unknown'], to: 'deploying' },
  deploy_succeeded: { from: ['deploying'], to: 'ready' },
  deploy_failed: { from: ['deploying'], to: 'failed' },
  cancelled_before_start: { from: ['deploying', 'tearing_down'], to: '*' },
  outcome_lost: { from: ['deploying', 'tearing_down'], to: 'unknown' },
  teardown_accepted: { from: ['pending', 'ready', 'failed', 'unknown'], to: 'tearing_down' },
  teardown_succeeded: { from: ['tearing_down'], to: 'torn_down' },
  teardown_failed: { from: ['tearing_down'], to: 'failed' },
  resolved: { from: ['unknown'], to: '*' },
  late_result: { from: ['unknown'], to: '*' },
  check_result: { from: ['unknown'], to: '*' },
};

/** SPEC §2.2. */
export const ATTEMPT_TABLE: Record<AttemptTrigger, { from: (AttemptState | null)[]; to: AttemptState[] }> = {
  accepted: { from: [null], to: ['queued'] },
  started: { from: ['queued'], to: ['running'] },
  start_failed: { from: ['queued'], to: ['failed'] },
  cancelled_before_start: { from: ['queued'], to: ['cancelled'] },
  exited: { from: ['running'], to: ['succeeded', 'failed', 'cancelled'] },
  outcome_lost: { from: ['queued', 'running'], to: ['unknown'] },
  late_result: { from: ['unknown'], to: ['succeeded', 'failed'] },
};

export const RESOLVE_TARGETS = ['ready', 'failed', 'torn_down'] as const;
export type ResolveTarget = (typeof RESOLVE_TARGETS)[number];

export interface DeploymentChange {
  from: DeploymentState | null;
  to: DeploymentState;
  trigger: DeploymentTrigger;
  reason: string | null;
}

export interface AttemptChange {
  from: AttemptState | null;
  to: AttemptState;
  trigger: AttemptTrigger;
  reason: AttemptReason | null;
}

/** What to write: attempt first, then deployment (the order of the events, SPEC §2.3). */
export interface Writes {
  attempt?: AttemptChange;
  deployment?: DeploymentChange;
}

export interface Refusal {
  code: ErrorCode;
  detail: string;
}

export type Decision = { ok: true; writes: Writes } | { ok: false; refusal: Refusal };

const refuse = (code: ErrorCode, detail: string): Decision => ({ ok: false, refusal: { code, detail } });
const allow = (writes: Writes): Decision => ({ ok: true, writes });

export function isActiveAttempt(state: AttemptState): boolean {
  return state === 'queued' || state === 'running';
}

export function isFinalAttempt(state: AttemptState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

export function isBusy(state: DeploymentState): boolean {
  return state === 'deploying' || state === 'tearing_down';
}

function deploymentMove(
  trigger: DeploymentTrigger,
  from: DeploymentState,
  to: DeploymentState,
  reason: string | null,
) {
  const rule = DEPLOYMENT_TABLE[trigger];
  if (!rule.from.includes(from) || (rule.to !== '*' && rule.to !== to)) {
    throw new Error(`transition table violated: ${trigger} ${from} -> ${to}`);
  }
  return { from, to, trigger, reason } satisfies DeploymentChange;
}

function attemptMove(
  trigger: AttemptTrigger,
  from: AttemptState | null,
  to: AttemptState,
  reason: AttemptReason | null,
) {
  const rule = ATTEMPT_TABLE[trigger];
  if (!rule.from.includes(from) || !rule.to.includes(to)) {
    throw new Error(`transition table violated: ${trigger} ${from} -> ${to}`);
  }
  return { from, to, trigger, reason } satisfies AttemptChange;
}

export function decideCreate(): Decision {
  return allow({ deployment: { from: null, to: 'pending', trigger: 'created', reason: null } });
}

export interface Caller {
  isAdmin: boolean;
}

function guardForce(force: boolean, caller: Caller): Decision | null {
  if (force && !caller.isAdmin) return refuse('FORBIDDEN', 'force requires the admin role');
  return null;
}

/** A new deploy attempt (SPEC §2.1 "deploy attempt accepted"). */
export function decideDeploy(state: DeploymentState, force: boolean, caller: Caller): Decision {
  const forbidden = guardForce(force, caller);
  if (forbidden) return forbidden;
  if (isBusy(state)) return refuse('ATTEMPT_IN_PROGRESS', `an attempt is already active (state ${state})`);
  if (state === 'unknown' && !force) {
    return refuse(
      'DEPLOYMENT_UNKNOWN_STATE',
      'the outcome of the last attempt is unknown: resolve it, run the check, or pass force as an admin',
    );
  }
  return allow({
    attempt: attemptMove('accepted', null, 'queued', null),
    deployment: deploymentMove('deploy_accepted', state, 'deploying', force ? 'forced' : null),
  });
}

/** A teardown attempt (SPEC §2.1 "teardown accepted"); `confirm` must repeat the name. */
export function decideTeardown(
  state: DeploymentState,
  input: { name: string; confirm: string; force: boolean },
  caller: Caller,
): Decision {
  if (input.confirm !== input.name) {
    return refuse('TEARDOWN_CONFIRM_MISMATCH', `confirm must equal the deployment name "${input.name}"`);
  }
  const forbidden = guardForce(input.force, caller);
  if (forbidden) return forbidden;
  if (state === 'torn_down') return refuse('ALREADY_TORN_DOWN', 'the deployment is already torn down');
  if (isBusy(state)) return refuse('ATTEMPT_IN_PROGRESS', `an attempt is already active (state ${state})`);
  if (state === 'unknown' && !input.force) {
    return refuse(
      'DEPLOYMENT_UNKNOWN_STATE',
      'the outcome of the last attempt is unknown: resolve it, run the check, or pass force as an admin',
    );
  }
  return allow({
    attempt: attemptMove('accepted', null, 'queued', null),
    deployment: deploymentMove('teardown_accepted', state, 'tearing_down', input.force ? 'forced' : null),
  });
}

/** The runner saw the process start. */
export function decideStarted(attempt: AttemptState): Decision {
  if (attempt !== 'queued') return refuse('INVALID_TRANSITION', `attempt is ${attempt}, not queued`);
  return allow({ attempt: attemptMove('started', 'queued', 'running', null) });
}

/** Why a gate cancels a waiting attempt (SPEC §13). */
export type GateCancelReason = 'queue_timeout' | 'rejected' | 'approval_expired';

/** What the runner observed about an attempt's end. */
export type Outcome =
  /** rc null: the process is confirmed gone but left no exit code (only meaningful after a cancel). */
  /** `unverified`: exit 0, but the plan's check gave the wrong verdict for the kind (SPEC §9.3). */
  | { kind: 'exit'; rc: number | null; cancelRequested: boolean; timedOut: boolean; unverified?: boolean }
  | { kind: 'start_failed' }
  /** Never started: cancelled by a caller, or by a gate it waited on (SPEC §13: its wait expired or was refused). */
  | { kind: 'cancelled_before_start'; reason?: GateCancelReason }
  | { kind: 'lost'; reason: 'exit_unobserved' | 'runner_lost' | 'start_interrupted' }
  | { kind: 'late_result'; rc: number; cancelRequested?: boolean; timedOut?: boolean };

export interface AttemptView {
  state: AttemptState;
  kind: AttemptKind;
  /** The deployment state the attempt was accepted from, for a cancel before start. */
  prevState: DeploymentState;
  /** Whether it is still the deployment's current attempt: only then may it move the deployment. */
  isCurrent: boolean;
}

function endState(outcome: Outcome): { to: AttemptState; reason: AttemptReason | null } {
  switch (outcome.kind) {
    case 'exit':
      // Cancellation wins over the exit code; then the timeout; then the code itself.
      if (outcome.cancelRequested) return { to: 'cancelled', reason: 'cancelled' };
      if (outcome.timedOut) return { to: 'failed', reason: 'timeout' };
      if (outcome.rc === null) return { to: 'failed', reason: 'runner_error' };
      if (outcome.rc === 0 && outcome.unverified) return { to: 'failed', reason: 'unverified' };
      return outcome.rc === 0 ? { to: 'succeeded', reason: null } : { to: 'failed', reason: 'exit_nonzero' };
    case 'start_failed':
      return { to: 'failed', reason: 'runner_error' };
    case 'cancelled_before_start':
      return { to: 'cancelled', reason: outcome.reason ?? 'cancelled' };
    case 'lost':
      return { to: 'unknown', reason: outcome.reason };
    case 'late_result':
      // A cancel or timeout that was under way still wins over the code; from unknown the only
      // non-success end is failed.
      if (outcome.cancelRequested || outcome.timedOut) return { to: 'failed', reason: 'late_result' };
      return { to: outcome.rc === 0 ? 'succeeded' : 'failed', reason: 'late_result' };
  }
}

const ATTEMPT_TRIGGER: Record<Outcome['kind'], AttemptTrigger> = {
  exit: 'exited',
  start_failed: 'start_failed',
  cancelled_before_start: 'cancelled_before_start',
  lost: 'outcome_lost',
  late_result: 'late_result',
};

/** Where the deployment goes when its current attempt ends this way. */
function deploymentAfter(
  attempt: AttemptView,
  deployment: DeploymentState,
  outcome: Outcome,
  end: AttemptState,
): DeploymentChange | undefined {
  if (!attempt.isCurrent) return undefined; // a stale attempt never moves the deployment
  const deploy = attempt.kind === 'deploy';
  if (outcome.kind === 'late_result') {
    if (deployment !== 'unknown') return undefined; // an operator or a check already decided
    const to: DeploymentState = end === 'succeeded' ? (deploy ? 'ready' : 'torn_down') : 'failed';
    return deploymentMove('late_result', deployment, to, 'late_result');
  }
  const expected: DeploymentState = deploy ? 'deploying' : 'tearing_down';
  if (deployment !== expected) return undefined;
  if (outcome.kind === 'cancelled_before_start') {
    return deploymentMove(
      'cancelled_before_start',
      deployment,
      attempt.prevState,
      outcome.reason ?? 'cancelled',
    );
  }
  if (outcome.kind === 'lost') return deploymentMove('outcome_lost', deployment, 'unknown', outcome.reason);
  const reason = end === 'succeeded' ? null : (endState(outcome).reason as string);
  if (deploy) {
    return end === 'succeeded'
      ? deploymentMove('deploy_succeeded', deployment, 'ready', reason)
      : deploymentMove('deploy_failed', deployment, 'failed', reason);
  }
  return end === 'succeeded'
    ? deploymentMove('teardown_succeeded', deployment, 'torn_down', reason)
    : deploymentMove('teardown_failed', deployment, 'failed', reason);
}

/** An attempt ends (or its end is found late). Final states are never overwritten. */
export function decideOutcome(attempt: AttemptView, deployment: DeploymentState, outcome: Outcome): Decision {
  const trigger = ATTEMPT_TRIGGER[outcome.kind];
  const rule = ATTEMPT_TABLE[trigger];
  if (!rule.from.includes(attempt.state)) {
    const code = isFinalAttempt(attempt.state) ? 'ATTEMPT_TERMINAL' : 'INVALID_TRANSITION';
    return refuse(code, `attempt is ${attempt.state}; ${trigger} does not apply`);
  }
  const end = endState(outcome);
  return allow({
    attempt: attemptMove(trigger, attempt.state, end.to, end.reason),
    deployment: deploymentAfter(attempt, deployment, outcome, end.to),
  });
}

/**
 * Cancel. Before the process started, the attempt is cancelled at once and the deployment goes back;
 * once it runs, cancel is only requested here and proven later by the process's exit. An `unknown`
 * attempt whose process a live instance still supervises can be stopped too; otherwise nothing can.
 */
export function decideCancel(
  attempt: { state: AttemptState; cancelRequested: boolean; supervised?: boolean } | null,
  processStarted: boolean,
  /** An automatic retry is scheduled (SPEC §9.1): with nothing in flight, cancel cancels that. */
  retryWaiting = false,
):
  | { ok: true; action: 'cancel_now' | 'request' | 'already_requested' | 'cancel_retry' }
  | { ok: false; refusal: Refusal } {
  if (attempt?.state === 'unknown' && !attempt.supervised) {
    return {
      ok: false,
      refusal: {
        code: 'NO_INFLIGHT_ATTEMPT',
        detail: 'the attempt’s outcome was lost and no live instance supervises its process',
      },
    };
  }
  if (!attempt || !(isActiveAttempt(attempt.state) || attempt.state === 'unknown')) {
    if (retryWaiting) return { ok: true, action: 'cancel_retry' };
    return {
      ok: false,
      refusal: { code: 'NO_INFLIGHT_ATTEMPT', detail: 'no queued or running attempt to cancel' },
    };
  }
  if (attempt.state === 'queued' && !processStarted) return { ok: true, action: 'cancel_now' };
  return { ok: true, action: attempt.cancelRequested ? 'already_requested' : 'request' };
}

/** An operator settles an `unknown` deployment. */
export function decideResolve(state: DeploymentState, to: string, reason: string, caller: Caller): Decision {
  if (!caller.isAdmin) return refuse('FORBIDDEN', 'resolve requires the admin role');
  if (!(RESOLVE_TARGETS as readonly string[]).includes(to)) {
    return refuse('VALIDATION', `state must be one of ${RESOLVE_TARGETS.join(', ')}`);
  }
  if (reason.trim() === '') return refuse('VALIDATION', 'a reason is required');
  if (state !== 'unknown')
    return refuse('INVALID_TRANSITION', `only an unknown deployment can be resolved (it is ${state})`);
  return allow({ deployment: deploymentMove('resolved', state, to as DeploymentState, reason) });
}

/** May the plan's check run now? */
export function decideCheck(state: DeploymentState, hasCheck: boolean): Decision {
  if (!hasCheck) return refuse('INVALID_TRANSITION', 'the plan has no check');
  if (isBusy(state)) return refuse('INVALID_TRANSITION', `an attempt is active (state ${state})`);
  return allow({});
}

export type CheckVerdict = 'up' | 'absent' | 'failed';

export function checkVerdict(rc: number | null): CheckVerdict {
  if (rc === 0) return 'up';
  if (rc === 3) return 'absent';
  return 'failed';
}

/** The verdict a verified attempt's check must give (SPEC §9.3). */
export function verifiedBy(kind: AttemptKind, verdict: CheckVerdict): boolean {
  return verdict === (kind === 'deploy' ? 'up' : 'absent');
}

/** A check's result resolves `unknown`; on any other state it only reports drift. */
export function decideCheckResult(state: DeploymentState, verdict: CheckVerdict): Writes {
  if (state !== 'unknown') return {};
  const to: DeploymentState = verdict === 'up' ? 'ready' : verdict === 'absent' ? 'torn_down' : 'failed';
  return { deployment: deploymentMove('check_result', state, to, `check ${verdict}`) };
}

export function decideDelete(state: DeploymentState, force: boolean, caller: Caller): Decision {
  const forbidden = guardForce(force, caller);
  if (forbidden) return forbidden;
  if (isBusy(state))
    return refuse('INVALID_TRANSITION', `cannot delete while an attempt is active (state ${state})`);
  if (state === 'pending' || state === 'torn_down' || force) return allow({});
  return refuse(
    'INVALID_TRANSITION',
    `only pending or torn_down deployments can be deleted (it is ${state}); admins may force`,
  );
}

/** Folds a deployment's state_transition events (seq order) into its state and version (SPEC §8.1). */
export function foldDeployment(events: { type: string; data: { entity?: unknown; to?: unknown } }[]): {
  state: DeploymentState | null;
  version: number;
} {
  let state: DeploymentState | null = null;
  let version = 0;
  for (const e of events) {
    // Only state_transition events count: a runner_event's data is whatever the plan wrote.
    if (e.type !== 'state_transition' || e.data.entity !== 'deployment') continue;
    state = e.data.to as DeploymentState;
    version += 1;
  }
  return { state, version };
}
