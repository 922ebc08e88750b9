// Loads and validates the config file (SPEC §4) into a LifelineConfig (types.ts).
//
// Order of precedence: defaults < the file < LIFELINE_* environment variables < command-line flags.
// Every problem is collected and thrown at once as a ConfigError whose every line names the file and
// field path (or the variable / flag). Unknown keys are errors: a typo in a control-plane config must
// not be silently ignored. No message ever quotes a configured value (it may be a token or a
// database password, SPEC §8.9).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { collectZodIssues, errorMap, formatPath, kindOf, readErrorMessage, type Seg } from './messages.ts';
import { nonEmpty, readEnvOverrides, readFlagOverrides, type ConfigOverrides } from './overrides.ts';
import { compileParamsSchema, isPlainObject, type CompiledParams } from './params.ts';
import { allowedKeys, PLAN_NAME_RE, resolveDb, schemas } from './schema.ts';
import { resolveTokens } from './tokens.ts';
import type { LifelineConfig, PlanConfig } from './types.ts';
import { resolveWebhooks } from './webhooks.ts';
import { resolveApproval } from './approval.ts';
import { resolveFreezes } from './freezes.ts';

export { ConfigError, type ConfigIssue } from './errors.ts';
export { parseDuration, MAX_DURATION_MS } from './duration.ts';
export { compileParamsSchema, type CompiledParams, type ParamFieldError } from './params.ts';
export type { ConfigOverrides } from './overrides.ts';
export { PLAN_NAME_RE, RESERVED_ACTORS, RUNNER_ENV_NAMES } from './schema.ts';

export const DEFAULT_CONFIG_FILE = 'lifeline.yaml';

export const DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 7400,
  dataDir: './data',
  timeoutMs: 3_600_000,
  checkTimeoutMs: 120_000,
  cancelGraceMs: 10_000,
  leaseTtlMs: 15_000,
  reapIntervalMs: 10_000,
  startDeadlineMs: 90_000,
  durableCommits: true,
  supervisor: 'perl' as const,
  database: Object.freeze({
    poolMax: 10,
    connectTimeoutMs: 5_000,
    statementTimeoutMs: 30_000,
    idleInTransactionTimeoutMs: 30_000,
  }),
});

export interface LoadConfigOptions {
  /** Config file; else LIFELINE_CONFIG, else ./lifeline.yaml (relative to the working directory). */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigOverrides;
}

export interface ConfigFromObjectOptions {
  /** Where the object came from (used in messages and as LifelineConfig.file); null/absent = built in code. */
  file?: string | null;
  /** Folder that relative paths resolve against; defaults to the file's folder, else the working directory. */
  baseDir?: string;
  /** Environment for LIFELINE_* overrides and `token_env`. Defaults to {} (not process.env): configs built in code are hermetic. */
  env?: NodeJS.ProcessEnv;
  overrides?: ConfigOverrides;
}

/** Reads, parses and validates the config file. Throws ConfigError. */
export function loadConfig(opts: LoadConfigOptions = {}): LifelineConfig {
  const env = opts.env ?? process.env;
  const given = opts.file ?? nonEmpty(env.LIFELINE_CONFIG) ?? DEFAULT_CONFIG_FILE;
  const file = path.resolve(given);
  const label = fileLabel(file);

  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(label, [{ source: label, path: '', message: readErrorMessage(e, file) }]);
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, logLevel: 'error' });
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) {
    throw new ConfigError(
      label,
      problems.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { source: `${label}:${line}:${col}`, path: '', message: `YAML syntax error: ${e.message}` };
      }),
    );
  }
  if (doc.contents === null) {
    throw new ConfigError(label, [
      { source: label, path: '', message: 'the file is empty; expected settings such as plans (SPEC §4)' },
    ]);
  }
  let obj: unknown;
  try {
    obj = doc.toJS();
  } catch (e) {
    throw new ConfigError(label, [
      { source: label, path: '', message: `YAML error: ${(e as Error).message}` },
    ]);
  }
  keepEnvScalarsAsWritten(obj, doc);
  try {
    return build(obj, { label, file, baseDir: path.dirname(file), env, overrides: opts.overrides });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Each problem in the file gets its line: `lifeline.yaml:12: plans.demo.timeout: …`.
    const withLines = e.issues.map((i) => {
      if (i.source !== label || !i.at || i.at.length === 0) return i;
      const line = lineOf(doc, lineCounter, i.at);
      return line === null ? i : { ...i, source: `${label}:${line}` };
    });
    throw new ConfigError(label, withLines);
  }
}

/**
 * The line of the key at `at` (a missing key: the line of the nearest mapping above it that is there;
 * a list item: its own line); null when the file has no position for it.
 */
function lineOf(doc: Document, counter: LineCounter, at: readonly (string | number)[]): number | null {
  let node: unknown = doc.contents;
  let pos = isNode(node) ? node.range?.[0] : undefined;
  for (const seg of at) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      if (isNode(pair.key) && pair.key.range) pos = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && isNode(node.items[seg])) {
      const item = node.items[seg] as Node;
      if (item.range) pos = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return pos === undefined ? null : counter.linePos(pos).line;
}

/** The same validation as loadConfig, for an already-parsed object (tests, the engine's test helpers). */
export function configFromObject(obj: unknown, opts: ConfigFromObjectOptions = {}): LifelineConfig {
  const file = opts.file ? path.resolve(opts.file) : null;
  const label = file ? fileLabel(file) : '(config object)';
  const baseDir = path.resolve(opts.baseDir ?? (file ? path.dirname(file) : process.cwd()));
  return build(obj, { label, file, baseDir, env: opts.env ?? {}, overrides: opts.overrides });
}

export function findPlan(config: LifelineConfig, name: string): PlanConfig | undefined {
  return Object.hasOwn(config.plans, name) ? config.plans[name] : undefined;
}

// ---------------------------------------------------------------------------------------------

interface BuildContext {
  label: string;
  file: string | null;
  baseDir: string;
  env: NodeJS.ProcessEnv;
  overrides: ConfigOverrides | undefined;
}

function build(obj: unknown, ctx: BuildContext): LifelineConfig {
  const { label, baseDir, env } = ctx;
  const issues: ConfigIssue[] = [];
  const add = (p: readonly Seg[], message: string) =>
    issues.push({ source: label, path: formatPath(p), message, at: [...p] });

  if (!isPlainObject(obj)) {
    add([], 'expected a mapping of settings at the top level (SPEC §4)');
    throw new ConfigError(label, issues);
  }

  const { top: topSchema, plan: planSchema } = schemas();
  const top = topSchema.safeParse(obj, { error: errorMap });
  if (!top.success) collectZodIssues(top.error.issues, [], (p) => allowedKeys(topSchema, p), add);

  // plans: checked key by key (names first), so that every plan's problems are reported.
  const plans: Record<string, PlanConfig> = Object.create(null);
  if (obj.plans !== undefined) {
    if (!isPlainObject(obj.plans)) {
      add(['plans'], `expected a mapping of plan names to plans, got ${kindOf(obj.plans)}`);
    } else {
      for (const [name, raw] of Object.entries(obj.plans)) {
        if (!PLAN_NAME_RE.test(name)) {
          add(
            ['plans', name],
            'invalid plan name: expected lower-case letters, digits, _ and - (starting with a letter or digit, at most 63 characters)',
          );
          continue;
        }
        const r = planSchema.safeParse(raw, { error: errorMap });
        if (!r.success) {
          collectZodIssues(r.error.issues, ['plans', name], (p) => allowedKeys(planSchema, p), add);
          continue;
        }
        const p = r.data;
        if (p.check_every !== undefined && !p.check) {
          add(
            ['plans', name, 'check_every'],
            'needs a check: give the plan a `check` to run, or remove check_every',
          );
          continue;
        }
        if (p.check_every !== undefined && p.check_every < 1000) {
          add(['plans', name, 'check_every'], 'must be at least 1s');
          continue;
        }
        if (p.self_heal && !p.retry) {
          add(
            ['plans', name, 'self_heal'],
            'needs retry: {max, backoff}: self-heals use its backoff and at most retry.max run a day',
          );
          continue;
        }
        const params: CompiledParams = p.params ?? compileParamsSchema(undefined);
        plans[name] = {
          name,
          description: p.description ?? '',
          deploy: resolveArgv(p.deploy, baseDir),
          teardown: resolveArgv(p.teardown, baseDir),
          check: p.check ? resolveArgv(p.check, baseDir) : null,
          timeoutMs: p.timeout ?? DEFAULTS.timeoutMs,
          checkTimeoutMs: p.check_timeout ?? DEFAULTS.checkTimeoutMs,
          verify: {
            deploy: Boolean(p.check) && (p.verify?.deploy ?? true),
            teardown: Boolean(p.check) && (p.verify?.teardown ?? true),
          },
          cancelGraceMs: p.cancel_grace ?? DEFAULTS.cancelGraceMs,
          retry: p.retry
            ? {
                max: p.retry.max,
                backoffMs: p.retry.backoff,
                maxBackoffMs:
                  p.retry.max_backoff ?? Math.max(p.retry.backoff, Math.min(10 * p.retry.backoff, 3_600_000)),
              }
            : null,
          checkEveryMs: p.check_every ?? null,
          selfHeal: p.self_heal ?? false,
          concurrency: p.concurrency
            ? {
                key: p.concurrency.key.template,
                keyParts: p.concurrency.key.parts,
                limit: p.concurrency.limit,
                whenBusy: p.concurrency.when_busy ?? 'queue',
                queueTimeoutMs: p.concurrency.queue_timeout ?? null,
              }
            : null,
          env: p.env ?? {},
          envPassthrough: p.env_passthrough ?? [],
          paramsSchema: params.paramsSchema,
          validateParams: params.validateParams,
          secretParams: params.secretParams,
          approval: resolveApproval(p.approval),
        };
        if (p.approval && !isPlainObject(obj.auth)) {
          add(
            ['plans', name, 'approval'],
            'needs auth: an approval must come from another token than the one that asked, so configure auth.tokens',
          );
        }
      }
    }
  }

  // token_env is read now; the token itself is kept only as its hash.
  const tokens = top.success && top.data.auth ? resolveTokens(top.data.auth, env, add) : [];

  const webhooks = top.success ? resolveWebhooks(top.data.webhooks ?? [], env, add) : [];
  const freezes = top.success ? resolveFreezes(top.data.freezes ?? [], add) : [];
  const fromEnv = readEnvOverrides(env, issues);
  const fromFlags = readFlagOverrides(ctx.overrides, issues);

  if (issues.length > 0 || !top.success) throw new ConfigError(label, issues);
  const f = top.data;

  const dataDir = fromEnv.dataDir ?? path.resolve(baseDir, f.data_dir ?? DEFAULTS.dataDir);
  return {
    file: ctx.file,
    server: {
      host: fromFlags.host ?? fromEnv.host ?? f.server?.host ?? DEFAULTS.host,
      port: fromFlags.port ?? fromEnv.port ?? f.server?.port ?? DEFAULTS.port,
      ...(f.server?.allowed_hosts ? { allowedHosts: f.server.allowed_hosts } : {}),
    },
    db:
      fromFlags.db ??
      fromEnv.db ??
      (f.db ? resolveDb(f.db, baseDir) : undefined) ??
      `sqlite:${path.join(dataDir, 'lifeline.db')}`,
    dataDir,
    auth: f.auth ? { tokens } : null,
    plans,
    leaseTtlMs: fromEnv.leaseTtlMs ?? f.lease_ttl ?? DEFAULTS.leaseTtlMs,
    reapIntervalMs: fromEnv.reapIntervalMs ?? f.reap_interval ?? DEFAULTS.reapIntervalMs,
    startDeadlineMs: f.start_deadline ?? DEFAULTS.startDeadlineMs,
    durableCommits: f.durable_commits ?? DEFAULTS.durableCommits,
    supervisor: f.supervisor ?? DEFAULTS.supervisor,
    webhooks,
    freezes,
    database: {
      poolMax: f.database?.pool_max ?? DEFAULTS.database.poolMax,
      connectTimeoutMs: f.database?.connect_timeout ?? DEFAULTS.database.connectTimeoutMs,
      statementTimeoutMs: f.database?.statement_timeout ?? DEFAULTS.database.statementTimeoutMs,
      idleInTransactionTimeoutMs:
        f.database?.idle_in_transaction_timeout ?? DEFAULTS.database.idleInTransactionTimeoutMs,
    },
    ...(f.retention
      ? { retention: { logsMs: f.retention.logs ?? null, runDirsMs: f.retention.run_dirs ?? null } }
      : {}),
    // Caps on log_line and runner_event events per attempt; the defaults (100,000 each / 50 MiB) otherwise.
    ...(f.log_limit
      ? {
          logLimit: {
            lines: f.log_limit.lines ?? 100_000,
            bytes: f.log_limit.bytes ?? 52_428_800,
            events: f.log_limit.events ?? 100_000,
          },
        }
      : {}),
  };
}

// --- helpers ------------------------------------------------------------------------------------

/**
 * argv[0]: absolute stays; a relative path (has a `/`) resolves against the config folder; a bare
 * program name (`bash`, `terraform`) is left for the runner's PATH lookup. Later elements resolve only
 * when they start with `./` or `../`. A trailing `/` is kept (it matters to tools such as rsync).
 */
function resolveArgv(argv: string[], baseDir: string): string[] {
  return argv.map((a, i) => {
    if (i === 0) {
      if (path.isAbsolute(a) || !a.includes('/')) return a;
      return resolveKeepingSlash(baseDir, a);
    }
    return a.startsWith('./') || a.startsWith('../') ? resolveKeepingSlash(baseDir, a) : a;
  });
}

function resolveKeepingSlash(baseDir: string, p: string): string {
  const r = path.resolve(baseDir, p);
  return p.endsWith('/') && !r.endsWith('/') ? `${r}/` : r;
}

/** The file as the operator would recognise it: relative to the working directory when inside it. */
function fileLabel(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

/**
 * YAML turns `VERSION: 1.10` into the number 1.1. A plan's env values are strings, so use the text as
 * written for plain scalars (String() is the fallback, e.g. for values reached through a merge key).
 */
function keepEnvScalarsAsWritten(obj: unknown, doc: ReturnType<typeof parseDocument>): void {
  if (!isPlainObject(obj) || !isPlainObject(obj.plans)) return;
  for (const [name, plan] of Object.entries(obj.plans)) {
    if (!isPlainObject(plan) || !isPlainObject(plan.env)) continue;
    const penv = plan.env;
    for (const [k, v] of Object.entries(penv)) {
      if (typeof v !== 'number' && typeof v !== 'boolean') continue;
      const node = doc.getIn(['plans', name, 'env', k], true);
      if (isScalar(node) && node.type === 'PLAIN' && typeof node.source === 'string') {
        Object.defineProperty(penv, k, {
          value: node.source,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
    }
  }
}
