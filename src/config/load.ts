// Loads and validates the config file (SPEC §4) into a LifelineConfig (types.ts).
//
// Order of precedence: defaults < the file < LIFELINE_* environment variables < command-line flags.
// Every problem is collected and thrown at once as a ConfigError whose every line names the file and
// field path (or the variable / flag). Unknown keys are errors: a typo in a control-plane config must
// not be silently ignored. No message ever quotes a configured value (it may be a token or a
// database password, SPEC §8.9).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isScalar, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ROLES } from '../domain/types.ts';
import { checkDuration } from './duration.ts';
import { ConfigError, type ConfigIssue } from './errors.ts';
import { compileParamsSchema, isPlainObject, type CompiledParams } from './params.ts';
import type { LifelineConfig, PlanConfig, TokenConfig } from './types.ts';
import { resolveWebhooks, WEBHOOK_KEYS, webhooksSchema } from './webhooks.ts';

/** Actor names Lifeline writes itself (runner, recovery, no-auth callers): no token may take them. */
export const RESERVED_ACTORS = ['system', 'runner', 'recovery', 'anonymous'];

export { ConfigError, type ConfigIssue } from './errors.ts';
export { parseDuration, MAX_DURATION_MS } from './duration.ts';
export { compileParamsSchema, type CompiledParams, type ParamFieldError } from './params.ts';

export const DEFAULT_CONFIG_FILE = 'lifeline.yaml';

export const DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 7400,
  dataDir: './data',
  timeoutMs: 3_600_000,
  cancelGraceMs: 10_000,
  leaseTtlMs: 15_000,
  reapIntervalMs: 10_000,
  startDeadlineMs: 90_000,
  durableCommits: true,
});

export const PLAN_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TOKEN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;

/** Variables the runner sets for every attempt (SPEC §4); a plan's `env` may not shadow them. */
export const RUNNER_ENV_NAMES: readonly string[] = [
  'LIFELINE_PARAMS',
  'LIFELINE_PARAMS_FILE',
  'LIFELINE_DEPLOYMENT_ID',
  'LIFELINE_DEPLOYMENT_NAME',
  'LIFELINE_ATTEMPT_ID',
  'LIFELINE_ATTEMPT_NUMBER',
  'LIFELINE_KIND',
  'LIFELINE_WORKSPACE',
  'LIFELINE_EVENTS_FILE',
];

/** Command-line flags of `lifeline serve`; they win over the file and the environment. */
export interface ConfigOverrides {
  db?: string;
  host?: string;
  port?: number;
}

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
  return build(obj, { label, file, baseDir: path.dirname(file), env, overrides: opts.overrides });
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

type Seg = string | number;

function build(obj: unknown, ctx: BuildContext): LifelineConfig {
  const { label, baseDir, env } = ctx;
  const issues: ConfigIssue[] = [];
  const add = (p: readonly Seg[], message: string) =>
    issues.push({ source: label, path: formatPath(p), message });

  if (!isPlainObject(obj)) {
    add([], 'expected a mapping of settings at the top level (SPEC §4)');
    throw new ConfigError(label, issues);
  }

  const top = schemas().top.safeParse(obj, { error: errorMap });
  if (!top.success) collectZodIssues(top.error.issues, [], add);

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
        const r = schemas().plan.safeParse(raw, { error: errorMap });
        if (!r.success) {
          collectZodIssues(r.error.issues, ['plans', name], add);
          continue;
        }
        const p = r.data;
        const params: CompiledParams = p.params ?? compileParamsSchema(undefined);
        plans[name] = {
          name,
          description: p.description ?? '',
          deploy: resolveArgv(p.deploy, baseDir),
          teardown: resolveArgv(p.teardown, baseDir),
          check: p.check ? resolveArgv(p.check, baseDir) : null,
          timeoutMs: p.timeout ?? DEFAULTS.timeoutMs,
          cancelGraceMs: p.cancel_grace ?? DEFAULTS.cancelGraceMs,
          env: p.env ?? {},
          paramsSchema: params.paramsSchema,
          validateParams: params.validateParams,
          secretParams: params.secretParams,
        };
      }
    }
  }

  // token_env is read now; the token itself is kept only as its hash.
  const tokens: TokenConfig[] = [];
  const indexOf: number[] = []; // tokens[n] came from auth.tokens[indexOf[n]]
  if (top.success && top.data.auth) {
    top.data.auth.tokens.forEach((t, i) => {
      const at = ['auth', 'tokens', i, 'token_env'];
      if (t.token_env === undefined) {
        tokens.push({ name: t.name, role: t.role, sha256: t.token_sha256.toLowerCase() });
        indexOf.push(i);
        return;
      }
      const value = env[t.token_env];
      if (value === undefined) add(at, `token "${t.name}": environment variable ${t.token_env} is not set`);
      else if (value === '') add(at, `token "${t.name}": environment variable ${t.token_env} is empty`);
      else if (value.trim() !== value) {
        // A bearer token with surrounding blanks can never match an Authorization header.
        add(at, `token "${t.name}": environment variable ${t.token_env} has leading or trailing whitespace`);
      } else {
        tokens.push({ name: t.name, role: t.role, sha256: sha256Hex(value) });
        indexOf.push(i);
      }
    });
    // Tokens must be told apart: by name (the actor in every event) and by value.
    tokens.forEach((t, n) => {
      const i = indexOf[n];
      const j = tokens.findIndex((o) => o.name === t.name);
      if (j < n) {
        add(
          ['auth', 'tokens', i, 'name'],
          `duplicate token name "${t.name}" (also auth.tokens[${indexOf[j]}])`,
        );
      }
      const k = tokens.findIndex((o) => o.sha256 === t.sha256);
      if (k < n) {
        add(
          ['auth', 'tokens', i],
          `token "${t.name}" is the same token as auth.tokens[${indexOf[k]}] ("${tokens[k].name}"); every token must differ`,
        );
      }
    });
  }

  const webhooks = top.success ? resolveWebhooks(top.data.webhooks ?? [], env, add) : [];
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
    webhooks,
  };
}

// --- schemas ------------------------------------------------------------------------------------

const NO_SHELL =
  'expected a list of strings (argv), not a string: Lifeline never runs plans through a shell, ' +
  'so write ["./deploy.sh", "--flag"] rather than "./deploy.sh --flag"';

// Built once (zod compiles each schema on first use, which costs milliseconds); everything that
// depends on the config's folder or environment happens in build(), after parsing.
let built: { top: ReturnType<typeof topSchema>; plan: ReturnType<typeof planSchema> } | undefined;
function schemas() {
  return (built ??= { top: topSchema(), plan: planSchema() });
}

function topSchema() {
  return z.strictObject({
    server: z
      .strictObject({
        host: z.unknown().transform(via(checkHost)).optional(),
        port: z.unknown().transform(via(checkPort)).optional(),
      })
      .optional(),
    db: z.string().transform(via(checkDb)).optional(),
    data_dir: z.string().transform(via(checkPathText)).optional(),
    auth: authSchema().optional(),
    plans: z.unknown().optional(), // checked plan by plan in build()
    lease_ttl: durationSchema(1).optional(),
    reap_interval: durationSchema(1).optional(),
    start_deadline: durationSchema(1).optional(),
    durable_commits: z.boolean().optional(),
    webhooks: webhooksSchema().optional(),
  });
}

function authSchema() {
  const token = z
    .strictObject({
      name: z
        .string()
        .regex(TOKEN_NAME_RE, 'expected letters, digits, ., _, @ or - (at most 64 characters)')
        .refine(
          (n) => !RESERVED_ACTORS.includes(n),
          `the names ${RESERVED_ACTORS.join(', ')} are reserved for Lifeline itself`,
        ),
      role: z.enum(ROLES, { error: `expected one of ${ROLES.join(', ')}` }),
      token_env: z.string().regex(ENV_NAME_RE, 'expected the name of an environment variable').optional(),
      // Never echo this value: someone may have pasted the token itself here.
      token_sha256: z
        .string()
        .regex(SHA256_RE, 'expected 64 hex characters: the SHA-256 of the token, not the token')
        .optional(),
    })
    .transform((t, zc) => {
      const name = `token "${t.name}"`;
      if (t.token_env !== undefined && t.token_sha256 !== undefined) {
        zc.addIssue({
          code: 'custom',
          message: `${name}: set exactly one of token_env or token_sha256, not both`,
        });
        return z.NEVER;
      }
      if (t.token_env !== undefined) return { name: t.name, role: t.role, token_env: t.token_env };
      if (t.token_sha256 !== undefined) return { name: t.name, role: t.role, token_sha256: t.token_sha256 };
      zc.addIssue({
        code: 'custom',
        message: `${name}: set one of token_env (a variable that holds the token) or token_sha256 (its SHA-256)`,
      });
      return z.NEVER;
    });
  return z.strictObject(
    {
      tokens: z.array(token).min(1, 'is empty: list at least one token, or remove auth to disable it'),
    },
    {
      error: (iss) =>
        iss.input === null ? 'is empty: list tokens under it, or remove auth to disable it' : undefined,
    },
  );
}

function planSchema() {
  const argv = z
    .array(z.string({ error: 'expected a string (argv elements are strings: quote numbers)' }), {
      error: (iss) => (typeof iss.input === 'string' ? NO_SHELL : undefined),
    })
    .min(1, 'must not be empty: give the program to run, e.g. ["./deploy.sh"]')
    .transform((list, zc) => {
      let ok = true;
      list.forEach((a, i) => {
        if (a.includes('\0')) {
          zc.addIssue({ code: 'custom', path: [i], message: 'must not contain a NUL character' });
          ok = false;
        }
      });
      if (list[0] === '') {
        zc.addIssue({ code: 'custom', path: [0], message: 'the program to run must not be empty' });
        ok = false;
      }
      return ok ? list : z.NEVER;
    });
  return z.strictObject(
    {
      description: z.string().optional(),
      deploy: argv,
      teardown: argv,
      check: argv.nullable().optional(),
      timeout: durationSchema(1).optional(),
      cancel_grace: durationSchema(0).optional(),
      env: z.unknown().transform(planEnv).optional(),
      params: z
        .unknown()
        .transform((v, zc) => {
          try {
            return compileParamsSchema(v);
          } catch (e) {
            zc.addIssue({ code: 'custom', message: (e as Error).message });
            return z.NEVER;
          }
        })
        .optional(),
    },
    {
      error: (iss) =>
        iss.code === 'invalid_type' ? `expected a plan (a mapping), got ${kindOf(iss.input)}` : undefined,
    },
  );
}

function durationSchema(min: 0 | 1) {
  return z.unknown().transform((v, zc) => {
    const r = checkDuration(v);
    if ('reason' in r) {
      zc.addIssue({ code: 'custom', message: r.reason });
      return z.NEVER;
    }
    if (r.ms < min) {
      zc.addIssue({ code: 'custom', message: 'must be longer than 0' });
      return z.NEVER;
    }
    return r.ms;
  });
}

function planEnv(v: unknown, zc: z.RefinementCtx): Record<string, string> {
  if (!isPlainObject(v)) {
    zc.addIssue({
      code: 'custom',
      message: `expected a mapping of variable names to values, got ${kindOf(v)}`,
    });
    return z.NEVER;
  }
  const out: [string, string][] = [];
  let ok = true;
  const fail = (key: string, message: string) => {
    zc.addIssue({ code: 'custom', path: [key], message });
    ok = false;
  };
  for (const [k, val] of Object.entries(v)) {
    if (!ENV_NAME_RE.test(k)) {
      fail(k, 'invalid variable name: expected letters, digits and _, not starting with a digit');
      continue;
    }
    if (RUNNER_ENV_NAMES.includes(k)) {
      fail(k, 'is set by the runner for every attempt (SPEC §4); choose another name');
      continue;
    }
    let s: string;
    if (typeof val === 'string') s = val;
    else if ((typeof val === 'number' && Number.isFinite(val)) || typeof val === 'boolean') s = String(val);
    else {
      fail(k, `expected a string, got ${kindOf(val)}`);
      continue;
    }
    if (s.includes('\0')) {
      fail(k, 'must not contain a NUL character');
      continue;
    }
    out.push([k, s]);
  }
  return ok ? Object.fromEntries(out) : z.NEVER;
}

/** Adapts a `(v) => value | {reason}` checker to a zod transform. */
function via<I, O>(check: (v: I) => O | { reason: string }) {
  return (v: I, zc: z.RefinementCtx): O => {
    const r = check(v);
    if (isReason(r)) {
      zc.addIssue({ code: 'custom', message: r.reason });
      return z.NEVER;
    }
    return r as O;
  };
}

function isReason(r: unknown): r is { reason: string } {
  return typeof r === 'object' && r !== null && 'reason' in r && Object.keys(r).length === 1;
}

// --- value checks (shared by the file, the environment and the flags) ---------------------------

function checkHost(v: unknown): string | { reason: string } {
  if (typeof v !== 'string' || v === '' || /[\s\0]/.test(v))
    return { reason: 'expected a host name or IP address' };
  return v;
}

function checkPort(v: unknown): number | { reason: string } {
  const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    return { reason: 'expected a port number from 0 to 65535' };
  }
  return n;
}

function checkPathText(v: string): string | { reason: string } {
  if (v === '') return { reason: 'must not be empty' };
  if (v.includes('\0')) return { reason: 'must not contain a NUL character' };
  return v;
}

/** `sqlite:<path>` or a `postgres://` / `postgresql://` URL; returned unchanged when valid. */
function checkDb(v: string): string | { reason: string } {
  const expected = 'expected sqlite:<path> (e.g. sqlite:./data/lifeline.db) or a postgres:// URL';
  if (v.startsWith('sqlite:')) {
    const p = v.slice('sqlite:'.length);
    if (p === ':memory:' || p.startsWith('file::memory:')) {
      return {
        reason: 'an in-memory SQLite database is not supported: Lifeline needs a file that outlives it',
      };
    }
    if (p.startsWith('//')) return { reason: `${expected}; write sqlite:/abs/path, not a sqlite:// URL` };
    if (p === '' || p.includes('\0')) return { reason: expected };
    return v;
  }
  if (/^postgres(ql)?:\/\//.test(v)) {
    try {
      new URL(v);
    } catch {
      return { reason: 'is not a valid postgres:// URL' }; // never echo it: it may hold a password
    }
    return v;
  }
  return { reason: expected };
}

/** A valid db with its `sqlite:` path made absolute against baseDir. */
function resolveDb(db: string, baseDir: string): string {
  return db.startsWith('sqlite:') ? `sqlite:${path.resolve(baseDir, db.slice('sqlite:'.length))}` : db;
}

interface EnvOverrides {
  db?: string;
  host?: string;
  port?: number;
  dataDir?: string;
  leaseTtlMs?: number;
  reapIntervalMs?: number;
}

/** LIFELINE_* variables. Unset or empty means "not set". Relative paths resolve against the working directory. */
function readEnvOverrides(env: NodeJS.ProcessEnv, issues: ConfigIssue[]): EnvOverrides {
  const out: EnvOverrides = {};
  const take = <T>(name: string, check: (v: string) => T | { reason: string }, set: (v: T) => void) => {
    const raw = nonEmpty(env[name]);
    if (raw === undefined) return;
    const r = check(raw);
    if (isReason(r)) issues.push({ source: `${name} (environment)`, path: '', message: r.reason });
    else set(r as T);
  };
  const cwd = process.cwd();
  take('LIFELINE_DB', checkDb, (v) => (out.db = resolveDb(v, cwd)));
  take('LIFELINE_HOST', checkHost, (v) => (out.host = v));
  take('LIFELINE_PORT', checkPort, (v) => (out.port = v));
  take(
    'LIFELINE_DATA_DIR',
    (v) => {
      const r = checkPathText(v);
      return typeof r === 'string' ? path.resolve(cwd, r) : r;
    },
    (v) => (out.dataDir = v),
  );
  const positiveDuration = (v: string) => {
    const r = checkDuration(v);
    if ('reason' in r) return r;
    return r.ms > 0 ? r.ms : { reason: 'must be longer than 0' };
  };
  take('LIFELINE_LEASE_TTL', positiveDuration, (v) => (out.leaseTtlMs = v));
  take('LIFELINE_REAP_INTERVAL', positiveDuration, (v) => (out.reapIntervalMs = v));
  return out;
}

function readFlagOverrides(o: ConfigOverrides | undefined, issues: ConfigIssue[]): ConfigOverrides {
  const out: ConfigOverrides = {};
  if (!o) return out;
  const take = <T>(
    flag: string,
    v: unknown,
    check: (v: never) => T | { reason: string },
    set: (v: T) => void,
  ) => {
    if (v === undefined) return;
    const r = check(v as never);
    if (isReason(r)) issues.push({ source: flag, path: '', message: r.reason });
    else set(r as T);
  };
  take(
    '--db',
    o.db,
    (v: unknown) => (typeof v === 'string' ? checkDb(v) : { reason: 'expected a string' }),
    (v) => (out.db = resolveDb(v, process.cwd())),
  );
  take('--host', o.host, checkHost, (v) => (out.host = v));
  take('--port', o.port, checkPort, (v) => (out.port = v));
  return out;
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

function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** The file as the operator would recognise it: relative to the working directory when inside it. */
function fileLabel(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

function readErrorMessage(e: unknown, file: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  const hint = ' (pass --config FILE or set LIFELINE_CONFIG)';
  if (code === 'ENOENT') return `cannot read the config file: ${file} does not exist${hint}`;
  if (code === 'EISDIR') return `cannot read the config file: ${file} is a directory${hint}`;
  if (code === 'EACCES') return `cannot read the config file ${file}: permission denied`;
  return `cannot read the config file ${file}: ${(e as Error).message}`;
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

function formatPath(p: readonly Seg[]): string {
  let s = '';
  for (const seg of p) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s === '' ? seg : `.${seg}`;
  }
  return s;
}

function kindOf(v: unknown): string {
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return 'a list';
  switch (typeof v) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'true/false';
    case 'object':
      return 'a mapping';
    default:
      return typeof v;
  }
}

const NOUNS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** Zod's default messages, reworded for operators. Never quotes the input. */
const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'is required';
    return `expected ${NOUNS[iss.expected] ?? iss.expected}, got ${kindOf(iss.input)}`;
  }
  if (iss.code === 'too_small' && iss.origin === 'string' && iss.minimum === 1) return 'must not be empty';
  return undefined;
};

const KEYS = {
  top: [
    'server',
    'db',
    'data_dir',
    'auth',
    'plans',
    'lease_ttl',
    'reap_interval',
    'start_deadline',
    'durable_commits',
    'webhooks',
  ],
  server: ['host', 'port'],
  auth: ['tokens'],
  token: ['name', 'role', 'token_env', 'token_sha256'],
  plan: ['description', 'deploy', 'teardown', 'check', 'timeout', 'cancel_grace', 'env', 'params'],
};

function allowedKeysAt(p: readonly Seg[]): string[] {
  if (p.length === 0) return KEYS.top;
  if (p.length === 1 && p[0] === 'server') return KEYS.server;
  if (p.length === 1 && p[0] === 'auth') return KEYS.auth;
  if (p.length === 3 && p[0] === 'auth' && p[1] === 'tokens') return KEYS.token;
  if (p.length === 2 && p[0] === 'plans') return KEYS.plan;
  if (p.length === 2 && p[0] === 'webhooks') return WEBHOOK_KEYS;
  return [];
}

function unknownKeyMessage(parent: readonly Seg[], key: string): string {
  const allowed = allowedKeysAt(parent);
  if (allowed === KEYS.token && /^(token|value|secret|password)$/i.test(key)) {
    return 'unknown key: never put a token in the file; use token_env (a variable holding it) or token_sha256';
  }
  const near = nearest(key, allowed);
  if (near) return `unknown key (did you mean ${near}?)`;
  return allowed.length > 0 ? `unknown key (expected one of: ${allowed.join(', ')})` : 'unknown key';
}

function collectZodIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly Seg[],
  add: (p: readonly Seg[], m: string) => void,
): void {
  for (const iss of issues) {
    const p = [...prefix, ...(iss.path as Seg[])];
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) add([...p, k], unknownKeyMessage(p, k));
    } else {
      add(p, iss.message);
    }
  }
}

/** The allowed key the typo most likely meant: within 2 edits, or a prefix of it (`token_sha`). */
function nearest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const k of allowed) {
    let score = editDistance(k, key);
    if (score > 2 && key.length >= 4 && (k.startsWith(key) || key.startsWith(k))) score = 2.5;
    if (score <= 2.5 && score < bestScore) {
      best = k;
      bestScore = score;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}
