// Kysely table types. JSON is stored as text and booleans as 0/1 so SQLite and Postgres share one schema.

export interface DeploymentsTable {
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
}

export interface AttemptsTable {
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
  /** The attempt number a rollback took its params from; null for any other attempt. */
  rollback_of?: number | null;
}

export interface EventsTable {
  seq: number;
  type: string;
  at: string;
  deployment_id: string | null;
  attempt_id: string | null;
  data: string;
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
  last_seen_at: string;
}

export interface Database {
  deployments: DeploymentsTable;
  attempts: AttemptsTable;
  events: EventsTable;
  counters: CountersTable;
  idempotency_keys: IdempotencyKeysTable;
  instances: InstancesTable;
}
