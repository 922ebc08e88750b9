// The validated, resolved configuration (SPEC §4). Produced by loadConfig() in load.ts.
import type { KeyPart } from '../domain/gates.ts';
import type { ApprovalPolicy } from '../domain/approval.ts';
import type { Freeze } from '../domain/freeze.ts';
import type { Role } from '../domain/types.ts';
import type { WebhookConfig } from './webhooks.ts';

export interface PlanConfig {
  name: string;
  description: string;
  /** argv, already resolved: `./x` and `../x` elements are absolute against the config file's folder. */
  deploy: string[];
  teardown: string[];
  check: string[] | null;
  timeoutMs: number; // default 1 h
  /** The check's own timeout when it verifies an attempt (default 2 m). */
  checkTimeoutMs: number;
  /** Which kinds a check must confirm after exit 0 (SPEC §9.3); both false without a check. */
  verify: { deploy: boolean; teardown: boolean };
  cancelGraceMs: number; // default 10 s
  /** Automatic retry of failed deploys (SPEC §9.1); null = none. */
  retry: RetryConfig | null;
  /** Scheduled checks of the plan's ready deployments (SPEC §14.2, `check_every`); null = none. */
  checkEveryMs: number | null;
  /** Redeploy a drifted deployment (`self_heal`), with the retry backoff, at most retry.max a day. */
  selfHeal: boolean;
  /** Concurrency limit (SPEC §13.1); null = none. */
  concurrency: ConcurrencyConfig | null;
  env: Record<string, string>;
  /** Server environment variables passed to the plan as they are (`env_passthrough`); none by default. */
  envPassthrough: string[];
  /** JSON Schema for params; `{type: 'object'}` when the plan declares none. */
  paramsSchema: Record<string, unknown>;
  /** Validates params against paramsSchema; returns field errors ([] when valid). Coerces nothing. */
  validateParams(params: unknown): { field: string; reason: string }[];
  /** Top-level param names whose schema says `writeOnly: true`. */
  secretParams: string[];
  /** `approval:` (SPEC §13.3): which kinds wait for a second person; null = none. */
  approval: ApprovalPolicy | null;
}

/** `concurrency: {key, limit, when_busy, queue_timeout}` of a plan. */
export interface ConcurrencyConfig {
  /** The key template as written, and parsed: text and `${params.NAME}` parts. */
  key: string;
  keyParts: KeyPart[];
  limit: number;
  whenBusy: 'queue' | 'reject';
  /** A waiting attempt is cancelled (reason queue_timeout) after this long; null = never. */
  queueTimeoutMs: number | null;
}

/** `retry: {max, backoff, max_backoff}` of a plan, in ms. */
export interface RetryConfig {
  max: number;
  backoffMs: number;
  /** Default: 10 × backoffMs, but never more than 1 h (nor less than backoffMs). */
  maxBackoffMs: number;
}

export interface TokenConfig {
  name: string;
  role: Role;
  /** Lower-case hex SHA-256 of the token (from token_sha256, or hashed from token_env at load). */
  sha256: string;
}

/** The `database:` settings: the Postgres pool and its timeouts (docs/scaling.md). SQLite ignores them. */
export interface DatabaseSettings {
  /** Most connections this instance holds open; requests beyond it wait (up to connectTimeoutMs). */
  poolMax: number;
  /** How long to wait for a connection (new or from the pool) before the request is a 503. */
  connectTimeoutMs: number;
  /** Server-side cap on one statement (Postgres statement_timeout). */
  statementTimeoutMs: number;
  /** The server ends a session left idle inside a transaction this long (idle_in_transaction_session_timeout). */
  idleInTransactionTimeoutMs: number;
}

export interface LifelineConfig {
  /** Absolute path of the file it came from, or null when built in code. */
  file: string | null;
  /** allowedHosts: extra `Host` names (lower case, `name` or `name:port`) the server answers to; absent = none. */
  server: { host: string; port: number; allowedHosts?: string[] };
  /** `sqlite:<path>` (path absolute) or `postgres://…` */
  db: string;
  /** absolute */
  dataDir: string;
  /** null = no auth (only allowed on loopback hosts; the server checks). */
  auth: { tokens: TokenConfig[] } | null;
  plans: Record<string, PlanConfig>;
  leaseTtlMs: number; // LIFELINE_LEASE_TTL, default 15 s
  reapIntervalMs: number; // LIFELINE_REAP_INTERVAL, default 10 s
  startDeadlineMs: number; // default 90 s
  /** false relaxes SQLite to synchronous=NORMAL; default true (FULL). */
  durableCommits: boolean;
  /** Which supervisor starts attempts (`supervisor`): `perl` (runner.pl, the default) or `sh` (supervisor.sh). */
  supervisor: 'perl' | 'sh';
  database: DatabaseSettings;
  /**
   * Caps per attempt (`log_limit`): log_line events (lines, bytes of text; default 100,000 / 50 MiB) and,
   * counted apart, runner_event events (events, bytes of data; default 100,000 / the same bytes).
   */
  logLimit?: { lines: number; bytes: number; events: number };
  /** SPEC §11 `retention:`; absent (or a field null) = keep forever. */
  retention?: { logsMs: number | null; runDirsMs: number | null };
  /** SPEC §10; [] when none. */
  webhooks: WebhookConfig[];
  /** SPEC §13.2 `freezes:` (source `config`); [] when none. */
  freezes: Freeze[];
}
