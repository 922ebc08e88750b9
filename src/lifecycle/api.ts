// The surface the HTTP layer (and tests) call, with the types it speaks in; implemented by Lifeline in
// engine.ts. It imports nothing from the rest of src/lifecycle, so nothing there can loop back through it.
// Every method throws LifelineError with a SPEC code on refusal and writes nothing then.
import type {
  Actor,
  Attempt,
  Deployment,
  DeploymentState,
  EventType,
  InstanceInfo,
  LifelineEvent,
  Page,
  Transition,
} from '../domain/types.ts';
import type { ApplyPlan, ApplyResult } from '../domain/apply-plan.ts';
import type { Phase } from '../domain/phases.ts';
import type { Stack } from '../domain/stack-types.ts';
import type { Run, RunKind } from '../domain/stack-run.ts';
import { isStoreClosed, isStoreUnavailable } from '../store/errors.ts';

export interface PlanInfo {
  name: string;
  description: string;
  params_schema: Record<string, unknown>;
  has_check: boolean;
}

/** A request's Idempotency-Key as its write carries it (SPEC §6). */
export interface IdempotencyKey {
  /** Who asked what: the caller, the method, the route and its {ref}. */
  scope: string;
  key: string;
  /** The request as sent, hashed: the same key with another request is refused. */
  requestHash: string;
}

/** How the caller guards a write. */
export interface WriteOptions {
  /** From `If-Match: "<version>"`: the deployment must still be at this version. */
  ifVersion?: number;
  /**
   * Committed in the write's own transaction, with what it wrote, so a crash leaves both or neither. If
   * a twin request under this key committed first, the write runs nothing and throws IdempotentReplay.
   */
  idempotency?: IdempotencyKey;
  /** The request the write is for (its X-Request-Id): the state-change log lines of its commits name it. */
  traceId?: string;
}

export interface EventQuery {
  after?: number;
  limit?: number;
  deployment?: string; // id or name
  stack?: string; // id or name
  types?: EventType[];
  /** The caller does not read `logs_pruned_before` (an event stream): it is not looked up and comes back null. */
  noPrunedMark?: boolean;
}

export interface CheckAccepted {
  deployment_id: string;
  status: 'accepted';
}

export interface IdempotentResponse {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * What an Idempotency-Key row holds: the full response once it was sent, or, between the commit and the
 * send, the committed entity (a deployment or attempt id) from which the HTTP layer re-renders it.
 */
export type StoredResponse = IdempotentResponse | { committed: { entity: string | null } };

/** SPEC §10: a configured webhook's health (GET /v1/webhooks); never its secret. */
export interface WebhookStatus {
  name: string;
  url: string;
  events: string[];
  enabled: boolean;
  delivered_seq: number;
  pending: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
}

/** SPEC §13.2: a freeze, from the config file or the API, and whether it is in force now. */
export interface FreezeInfo {
  name: string;
  source: 'config' | 'api';
  match: { plans?: string[]; labels?: Record<string, string>; kinds?: ('deploy' | 'teardown')[] };
  /** null: in force from the moment it was written (a config freeze without `from`) */
  from: string | null;
  until: string;
  when: 'queue' | 'reject';
  in_force: boolean;
  /** API freezes: why, who made it and when; null for the file's */
  reason: string | null;
  created_by: string | null;
  created_at: string | null;
}

/** The body of POST /v1/freezes, as sent (the lifecycle checks it). */
export interface NewFreeze {
  name: string;
  match?: unknown;
  until: string;
  reason: string;
  when?: 'queue' | 'reject';
}

/** Thrown by a keyed write when another request with the same key and body committed first. */
export class IdempotentReplay extends Error {
  constructor(readonly stored: StoredResponse) {
    super('a request with this Idempotency-Key has already committed');
    this.name = 'IdempotentReplay';
  }
}

export interface LifelineApi {
  readonly instanceId: string;
  listPlans(): PlanInfo[];

  /** `w.ifVersion` does not apply: there is no deployment yet. */
  createDeployment(
    input: { name: string; plan: string; params?: unknown; labels?: Record<string, string> },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Deployment>;
  listDeployments(query: {
    state?: DeploymentState;
    plan?: string;
    labels?: Record<string, string>;
    /** Only drifted deployments (true) or only the others (false); SPEC §14.2. */
    drift?: boolean;
    limit?: number;
    cursor?: string;
  }): Promise<Page<Deployment>>;
  getDeployment(ref: string): Promise<Deployment>;
  deleteDeployment(ref: string, opts: { force?: boolean }, actor: Actor, w?: WriteOptions): Promise<void>;

  /** SPEC §12: the spec as sent (JSON or parsed YAML); every malformed part is a 422 naming its field. */
  createStack(spec: unknown, actor: Actor, w?: WriteOptions): Promise<Stack>;
  /** `w.ifVersion` is the stack's version. */
  updateStack(name: string, spec: unknown, actor: Actor, w?: WriteOptions): Promise<Stack>;
  deleteStack(name: string, opts: { force?: boolean }, actor: Actor, w?: WriteOptions): Promise<void>;
  getStack(ref: string): Promise<Stack>;
  listStacks(query: { limit?: number; cursor?: string }): Promise<Page<Stack>>;
  /** A stack filter as an id; deleted stacks stay addressable by id. */
  stackIdFor(ref: string): Promise<string>;

  /** SPEC §12.4: a deploy (`{units?, all?, force?}`) or teardown (`{confirm, force?}`) run; 202 Run. */
  startStackRun(
    name: string,
    kind: RunKind,
    input: Record<string, unknown>,
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Run>;
  /** Cancels the stack's active run (NO_ACTIVE_RUN when none). */
  cancelStackRun(name: string, actor: Actor, w?: WriteOptions): Promise<Run>;
  /** A stack's runs, newest first. */
  listRuns(name: string, query: { limit?: number; cursor?: string }): Promise<Page<Run>>;
  getRun(id: string): Promise<Run>;

  /** SPEC §14.1: the plan of a file (`{source, documents, prune?, max_delete?}`). */
  planApply(input: unknown): Promise<ApplyPlan>;
  /** SPEC §14.1: carries a plan out if its `digest` still holds (else PLAN_STALE, nothing written). */
  apply(input: unknown, actor: Actor, w?: WriteOptions): Promise<ApplyResult>;

  startDeploy(
    ref: string,
    input: { params?: unknown; force?: boolean },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Attempt>;
  /** A deploy attempt with the params of the last succeeded deploy (or of attempt `to`), SPEC §9.2. */
  rollback(
    ref: string,
    input: { to?: number; force?: boolean },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Attempt>;
  teardown(
    ref: string,
    input: { confirm?: string; force?: boolean },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Attempt>;
  cancel(ref: string, actor: Actor, w?: WriteOptions): Promise<Attempt>;
  resolve(
    ref: string,
    input: { state: 'ready' | 'failed' | 'torn_down'; reason: string },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Deployment>;
  check(ref: string, actor: Actor, w?: WriteOptions): Promise<CheckAccepted>;

  listAttempts(ref: string, query: { limit?: number; cursor?: string }): Promise<Page<Attempt>>;
  getAttempt(id: string): Promise<Attempt>;
  /** Every attempt a gate holds (SPEC §13.4), oldest wait first; `gate` keeps those held by that gate. */
  listWaitingAttempts(query: { gate?: string }): Promise<{ items: Attempt[] }>;
  /** The attempt's phases from its runner events (SPEC §9.4). */
  listPhases(id: string): Promise<{ items: Phase[] }>;
  /** Output of an attempt as written (stdout and stderr interleaved): `limit` bytes from byte `offset`, or the last `tail` lines. */
  readAttemptLog(
    id: string,
    offset?: number,
    opts?: { limit?: number; tail?: number },
  ): Promise<{ text: string; next_offset: number }>;
  listTransitions(ref: string): Promise<{ items: Transition[] }>;

  /** `logs_pruned_before`: seqs below it may be missing, pruned log_line/runner_event events (SPEC §11). */
  listEvents(
    query: EventQuery,
  ): Promise<{ items: LifelineEvent[]; next_after: number; logs_pruned_before: number | null }>;
  /**
   * Refuses (422 naming `field`) a cursor past the last seq handed out: such a reader (an id from before a
   * restore, or made up) would wait in silence until the log caught up with it.
   */
  checkEventCursor(after: number, field: string): Promise<void>;
  /** A deployment filter as an id; deleted deployments stay addressable by id. */
  deploymentIdFor(ref: string): Promise<string>;
  /** Wakes a listener after any commit that appended events; the events table stays the truth. */
  onEvents(listener: (lastSeq?: number) => void): () => void;

  listInstances(): Promise<InstanceInfo[]>;
  readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }>;
  /** Prometheus exposition text of this instance (SPEC §11). */
  scrapeMetrics(): Promise<{ contentType: string; text: string }>;
  /** Counts an open event stream for the metrics; call the returned function when it closes. */
  streamOpened(): () => void;
  /** SPEC §10: each configured webhook's health; never its secret. */
  listWebhooks(): Promise<{ items: WebhookStatus[] }>;
  /** Moves a webhook's cursor back so that delivery restarts at `fromSeq`. */
  redeliverWebhook(name: string, fromSeq: number): Promise<WebhookStatus>;

  /** SPEC §13.3: approve an attempt waiting for approval (not its requester; at least the plan's role). */
  approveAttempt(id: string, input: { reason: string }, actor: Actor, w?: WriteOptions): Promise<Attempt>;
  /** SPEC §13.3: reject it: cancelled, reason `rejected`. */
  rejectAttempt(id: string, input: { reason: string }, actor: Actor, w?: WriteOptions): Promise<Attempt>;

  /** SPEC §13.2: the file's freezes and the API's standing ones, each with whether it is in force. */
  listFreezes(): Promise<{ items: FreezeInfo[] }>;
  /** A freeze in force from now until `until` (admin). */
  createFreeze(input: NewFreeze, actor: Actor): Promise<FreezeInfo>;
  /** Lifts an API freeze (admin); the attempts it held go on in queue order. */
  deleteFreeze(name: string, actor: Actor): Promise<void>;

  /**
   * The stored response of an Idempotency-Key, null when none was stored; VALIDATION (422) when the key
   * was used with another request.
   */
  idempotencyLookup(key: IdempotencyKey): Promise<StoredResponse | null>;
  /** Records the response as sent (the write's transaction recorded the key already, if it wrote). */
  idempotencySave(key: IdempotencyKey, response: IdempotentResponse): Promise<void>;
}

/** Limits of GET /v1/attempts/{id}/log: a page's default and largest size in bytes, the largest tail. */
export const LOG_PAGE_DEFAULT = 4 * 1024 * 1024;
export const LOG_PAGE_MAX = 16 * 1024 * 1024;
export const LOG_TAIL_MAX = 10_000;

/**
 * What an error a method threw says about the store: `unavailable` (an outage: the caller may retry
 * later, 503), `closed` (this process closed it: it will not come back), or null (anything else).
 */
export function storeFault(err: unknown): 'unavailable' | 'closed' | null {
  if (!isStoreUnavailable(err)) return null;
  return isStoreClosed(err) ? 'closed' : 'unavailable';
}
