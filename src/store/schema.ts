// Kysely table types. JSON is stored as text and booleans as 0/1 so SQLite and Postgres share one schema.

export interface DeploymentsTable {
  /** JSON array of the secret param names when created (null before migration 010). */
  secret_params?: string | null;
  id: string;
  name: string;
  plan: string;
  params: string;
  labels: string;
  state: string;
  version: number;
  state_changed_at: string;
  current_attempt_id: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  /** The scheduled retry (011, SPEC §9.1): n of max, when, and the failed attempt it reruns; null when none. */
  retry_number?: number | null;
  retry_of?: number | null;
  retry_at?: string | null;
  retry_attempt_id?: string | null;
  /** JSON object: the outputs of the last succeeded deploy, `{}` after a teardown (014, SPEC §12.1). */
  outputs?: string;
  /** A unit's stack, key and index (015, SPEC §12); null for a standalone deployment. */
  stack_id?: string | null;
  unit_key?: string | null;
  unit_index?: number | null;
  /** Drift (017, SPEC §14.2): since when and which verdict; null when not drifted. */
  drift_since?: string | null;
  drift_verdict?: string | null;
  /** When the next scheduled check is due (database clock); null until the scheduler slots it. */
  next_check_at?: string | null;
  /** The claim of the scheduled check running now: instance, lease epoch, and the version it checks. */
  check_owner?: string | null;
  check_epoch?: number | null;
  check_version?: number | null;
  /** When the claim expires (the check's deadline and a margin): a dead claimer's claim is taken again. */
  check_until?: string | null;
  /** When a self-heal deploy starts (SPEC §14.2); null when none waits. */
  heal_at?: string | null;
}

/** A stack (015): its spec as JSON text, its derived state (SPEC §12.3) and the run active on it. */
export interface StacksTable {
  id: string;
  name: string;
  spec: string;
  labels: string;
  state: string;
  version: number;
  active_run_id: string | null;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

/** A run (015, SPEC §12.4): steps is JSON text `[{key, index, deployment_id, step, attempt_id}]`. */
export interface RunsTable {
  id: string;
  stack_id: string;
  kind: string;
  state: string;
  version: number;
  steps: string;
  options: string;
  actor: string;
  reason: string | null;
  created_at: string;
  updated_at: string;
  ended_at: string | null;
  /** When a cancel was asked and by whom (015b); null until then. */
  cancel_requested_at?: string | null;
  cancel_requested_by?: string | null;
}

export interface AttemptsTable {
  /** JSON array of the secret param names when accepted (null before migration 010). */
  secret_params?: string | null;
  id: string;
  deployment_id: string;
  number: number;
  kind: string;
  state: string;
  reason: string | null;
  rc: number | null;
  params: string;
  force: number;
  requested_by: string;
  queued_at: string;
  started_at: string | null;
  ended_at: string | null;
  cancel_requested_at: string | null;
  timed_out_at: string | null;
  recovered: number;
  owner: string | null;
  /** Deployment state when the attempt was accepted: where a cancel before start goes back to. */
  prev_state: string;
  version: number;
  pid: number | null;
  process_start: string | null;
  boot_id: string | null;
  run_dir: string | null;
  timeout_ms: number;
  cancel_grace_ms: number;
  stdout_offset: number;
  stderr_offset: number;
  events_offset: number;
  /** Why it ended when no exit code says it (runner_error). Optional only because inserts leave it out. */
  detail?: string | null;
  /** The owner's lease epoch when it took the attempt: the fence of its writes (0 before migration 008). */
  owner_epoch?: number;
  /** The attempt number a rollback took its params from; null for any other attempt. */
  rollback_of?: number | null;
  /** Which automatic retry this attempt is (011): n of its chain; null for any other attempt. */
  retry_number?: number | null;
  /** JSON object: what the plan published so far, merged (014, SPEC §12.1). */
  outputs?: string;
  /** 1 while a gate holds the attempt (016, SPEC §13): not launched, left alone by recovery. */
  waiting?: number;
  /** When its last gate opened (016): the start deadline counts from here; null when none held it. */
  opened_at?: string | null;
  /** Who approved it (016b, SPEC §13.3), or whose approval an automatic retry inherits; null when none. */
  approved_by?: string | null;
  approved_at?: string | null;
}

export interface EventsTable {
  seq: number;
  type: string;
  at: string;
  deployment_id: string | null;
  attempt_id: string | null;
  data: string;
  /** log_line of an attempt: where the line starts in the attempt's log text; else null. */
  log_offset: number | null;
  /** The stack of a unit's event or of a stack's own event (015); null otherwise. */
  stack_id?: string | null;
}

/** Ingestion state of an attempt's output, kept across its bounded transactions. */
export interface AttemptLogsTable {
  attempt_id: string;
  lines: number;
  bytes: number;
  stdout_skip: number;
  stderr_skip: number;
  events_skip: number;
  cap_stdout: number | null;
  cap_stderr: number | null;
  /** runner_event events stored so far and the bytes of their data JSON (013) */
  event_count: number;
  event_bytes: number;
  /** 1 once the runner_event cap was reached: the rest stay in the run dir's events file */
  events_capped: number;
}

/** One row per label of a deployment (004): what the label filter of the list reads. */
export interface DeploymentLabelsTable {
  key: string;
  value: string;
  deployment_id: string;
}

export interface CountersTable {
  name: string;
  value: number;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  response: string | null;
  created_at: string;
}

export interface InstancesTable {
  id: string;
  host: string;
  port: number | null;
  role: string;
  data_dir: string;
  pid: number;
  started_at: string;
  /** The lease heartbeat, on the database's clock. */
  last_seen_at: string;
  /** Bumped by every registration; optional only because inserts leave it to the database. */
  epoch?: number;
}

export interface WebhooksTable {
  name: string;
  /** The durable cursor: every selected event up to this seq was answered 2xx. */
  delivered_seq: number;
  enabled: number;
  failures: number;
  last_status: number | null;
  last_error: string | null;
  next_attempt_at: string | null;
  lease_owner: string | null;
  lease_until: string | null;
  updated_at: string;
}

/** Per attempt (012): its pruned log and events, and its raw output past the cap (SPEC §11). */
export interface LogArchiveTable {
  attempt_id: string;
  pruned_at: string | null;
  /** gzip of the log text as served up to attempt_logs.bytes */
  log: Buffer | null;
  log_bytes: number | null;
  /** gzip of a JSON array of ArchivedEvent (store/archive.ts) */
  events: Buffer | null;
  event_count: number | null;
  last_seq: number | null;
  deleting?: number;
  rest_at: string | null;
  stdout_rest: Buffer | null;
  stderr_rest: Buffer | null;
}

/** The pruner's lease and how far logs were pruned (012): one row, name 'logs'. */
export interface RetentionTable {
  name: string;
  lease_owner: string | null;
  lease_until: string | null;
  pruned_before: number | null;
  updated_at: string;
}

/** One gate holding (or having held) an attempt (016, SPEC §13): the generic waiting record. */
export interface AttemptGatesTable {
  attempt_id: string;
  gate: string;
  /** The queue it is in (a concurrency key); null for gates without one. */
  key: string | null;
  /** JSON: what the gate says (the API computes live parts, such as a queue position, on read). */
  detail: string;
  since: string;
  /** The seq of its gate_waiting event: queue order is commit order. */
  queue_seq: number;
  opened_at: string | null;
  /** When the wait ends in a cancel (queue_timeout, approval_expired), on the database's clock. */
  expires_at: string | null;
}

/** One concurrency slot held (016): (key, slot) unique, slot in 1..limit. */
export interface GateSlotsTable {
  key: string;
  slot: number;
  attempt_id: string;
  since: string;
}

/** A freeze made through the API (016b, SPEC §13.2); it stands until lifted_at. */
export interface FreezesTable {
  id: string;
  name: string;
  /** JSON of {plans?, labels?, kinds?} */
  match: string;
  from_at: string;
  until_at: string;
  reason: string;
  /** `when`: queue or reject */
  mode: string;
  created_by: string;
  created_at: string;
  lifted_at: string | null;
  lifted_by: string | null;
}

export interface Database {
  deployments: DeploymentsTable;
  attempts: AttemptsTable;
  events: EventsTable;
  deployment_labels: DeploymentLabelsTable;
  attempt_logs: AttemptLogsTable;
  counters: CountersTable;
  idempotency_keys: IdempotencyKeysTable;
  instances: InstancesTable;
  webhooks: WebhooksTable;
  log_archive: LogArchiveTable;
  retention: RetentionTable;
  stacks: StacksTable;
  runs: RunsTable;
  attempt_gates: AttemptGatesTable;
  gate_slots: GateSlotsTable;
  gate_keys: { key: string };
  freezes: FreezesTable;
}
