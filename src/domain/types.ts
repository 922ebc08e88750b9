// Shared vocabulary of SPEC §1–3. Pure types and constants, no I/O.

export const DEPLOYMENT_STATES = [
  'pending',
  'deploying',
  'ready',
  'failed',
  'unknown',
  'tearing_down',
  'torn_down',
] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/** A deployment's name, also its address in URLs: lowercase letters, digits and dashes. */
export const DEPLOYMENT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A label key (the label filter and stack specs share it). */
export const LABEL_KEY = /^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,62})$/;

export const ATTEMPT_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled', 'unknown'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];

export const ATTEMPT_REASONS = [
  'exit_nonzero',
  'timeout',
  'cancelled',
  'runner_error',
  'exit_unobserved',
  'runner_lost',
  'start_interrupted',
  'late_result',
  'unverified',
  'rejected',
  'approval_expired',
  'queue_timeout',
] as const;
export type AttemptReason = (typeof ATTEMPT_REASONS)[number];

export type AttemptKind = 'deploy' | 'teardown';

export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who asked for a write: a token's name and role, or the system itself. */
export interface Actor {
  name: string;
  role: Role;
}
export const SYSTEM_ACTOR: Actor = { name: 'system', role: 'admin' };

export const ERROR_CODES = [
  'NOT_FOUND',
  'VALIDATION',
  'DEPLOYMENT_EXISTS',
  'PLAN_NOT_FOUND',
  'ATTEMPT_IN_PROGRESS',
  'DEPLOYMENT_UNKNOWN_STATE',
  'INVALID_TRANSITION',
  'ALREADY_TORN_DOWN',
  'TEARDOWN_CONFIRM_MISMATCH',
  'NO_INFLIGHT_ATTEMPT',
  'ATTEMPT_TERMINAL',
  'VERSION_MISMATCH',
  'AUTH_REQUIRED',
  'FORBIDDEN',
  'STORE_UNAVAILABLE',
  'PAYLOAD_TOO_LARGE',
  'NO_ROLLBACK_TARGET',
  'STACK_EXISTS',
  'UNIT_NOT_TORN_DOWN',
  'STACK_RUN_IN_PROGRESS',
  'STACK_UNKNOWN_STATE',
  'NO_ACTIVE_RUN',
  'CONCURRENCY_LIMIT',
  'FROZEN',
  'FREEZE_EXISTS',
  'PLAN_STALE',
  'PRUNE_LIMIT',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const EVENT_TYPES = [
  'deployment_created',
  'deployment_deleted',
  'state_transition',
  'attempt_start',
  'attempt_end',
  'cancel_requested',
  'timeout_reached',
  'log_line',
  'runner_event',
  'check_result',
  'retry_scheduled',
  'retry_cancelled',
  'retry_exhausted',
  'outputs_changed',
  'drift_detected',
  'drift_cleared',
  'gate_waiting',
  'gate_opened',
  'approval_granted',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** An event as stored and served (SPEC §3). */
export interface LifelineEvent {
  seq: number;
  type: EventType;
  at: string;
  deployment_id: string | null;
  attempt_id: string | null;
  /** The stack of a unit's event or of a stack's own event (SPEC §12); absent otherwise. */
  stack_id?: string;
  data: Record<string, unknown>;
}

/**
 * An event before it has a seq: what a write appends. `stack_id` left out is looked up from the
 * deployment (store/events.ts); a writer that knows it passes it.
 */
export type NewEvent = Omit<LifelineEvent, 'seq' | 'at' | 'stack_id'> & { stack_id?: string | null };

export interface AttemptSummary {
  id: string;
  number: number;
  kind: AttemptKind;
  state: AttemptState;
}

export interface ScheduledRetry {
  number: number;
  of: number;
  at: string;
}

export interface Deployment {
  id: string;
  name: string;
  plan: string;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  state: DeploymentState;
  version: number;
  state_changed_at: string;
  current_attempt: AttemptSummary | null;
  /** The automatic retry waiting (SPEC §9.1): retry `number` of `of`, due `at`; null when none. */
  retry: ScheduledRetry | null;
  /** What its last succeeded deploy published (SPEC §12.1), secrets masked; `{}` when none or torn down. */
  outputs: Record<string, unknown>;
  /**
   * A ready deployment a check found drifted (SPEC §14.2): since when, the verdict, and when a
   * self-heal deploy starts (null when none waits); null when not drifted.
   */
  drift: { since: string; verdict: 'absent' | 'failed'; heal_at: string | null } | null;
  created_at: string;
  updated_at: string;
}

export interface Attempt {
  id: string;
  deployment_id: string;
  number: number;
  kind: AttemptKind;
  state: AttemptState;
  reason: AttemptReason | null;
  rc: number | null;
  params: Record<string, unknown>;
  force: boolean;
  requested_by: string;
  queued_at: string;
  started_at: string | null;
  ended_at: string | null;
  cancel_requested_at: string | null;
  recovered: boolean;
  owner: string | null;
  /** Why it ended, when no exit code says it: e.g. `program not found or not executable: …`. */
  detail: string | null;
  /** For a rollback (SPEC §9.2): the number of the succeeded deploy attempt whose params it runs. */
  rollback_of: number | null;
  /** What the plan published so far (SPEC §12.1), merged, secrets masked. */
  outputs: Record<string, unknown>;
  /** The gates holding it (SPEC §13): empty unless it is queued behind one. */
  waiting: WaitingGate[];
}

/** The gates that may hold an accepted attempt (SPEC §13; the decisions are in gates.ts). */
export const GATE_NAMES = ['concurrency', 'freeze', 'approval'] as const;
export type GateName = (typeof GATE_NAMES)[number];

/** One gate holding an attempt, as the API shows it. */
export interface WaitingGate {
  gate: GateName;
  detail: Record<string, unknown>;
  since: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Transition {
  seq: number;
  at: string;
  from: DeploymentState | null;
  to: DeploymentState;
  trigger: string;
  reason: string | null;
  actor: string;
  attempt_id: string | null;
}

export interface InstanceInfo {
  id: string;
  host: string;
  port: number | null;
  role: string;
  data_dir: string;
  started_at: string;
  last_seen_at: string;
  alive: boolean;
}
