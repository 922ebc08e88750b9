// The surface the HTTP layer (and tests) call. Implemented by Lifeline in engine.ts.
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
import type { WebhookStatus } from './webhooks/service.ts';
import type { Phase } from '../domain/phases.ts';
import type { StoredResponse } from './idempotent-request.ts';

export interface PlanInfo {
  name: string;
  description: string;
  params_schema: Record<string, unknown>;
  has_check: boolean;
}

/** Optional concurrency guard from `If-Match: "<version>"`. */
export interface WriteOptions {
  ifVersion?: number;
}

export interface EventQuery {
  after?: number;
  limit?: number;
  deployment?: string; // id or name
  types?: EventType[];
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

export interface LifelineApi {
  readonly instanceId: string;
  listPlans(): PlanInfo[];

  createDeployment(
    input: { name: string; plan: string; params?: unknown; labels?: Record<string, string> },
    actor: Actor,
  ): Promise<Deployment>;
  listDeployments(query: {
    state?: DeploymentState;
    plan?: string;
    labels?: Record<string, string>;
    limit?: number;
    cursor?: string;
  }): Promise<Page<Deployment>>;
  getDeployment(ref: string): Promise<Deployment>;
  deleteDeployment(ref: string, opts: { force?: boolean }, actor: Actor, w?: WriteOptions): Promise<void>;

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

  /** Idempotency-Key store, scoped by the caller (e.g. token name + method + path). */
  idempotencyLookup(
    scope: string,
    key: string,
  ): Promise<{ request_hash: string; response: StoredResponse } | null>;
  /** Records the response as sent (the write's transaction recorded the key already, if it wrote). */
  idempotencySave(
    scope: string,
    key: string,
    requestHash: string,
    response: IdempotentResponse,
  ): Promise<void>;
}

/** Limits of GET /v1/attempts/{id}/log: a page's default and largest size in bytes, the largest tail. */
export const LOG_PAGE_DEFAULT = 4 * 1024 * 1024;
export const LOG_PAGE_MAX = 16 * 1024 * 1024;
export const LOG_TAIL_MAX = 10_000;
