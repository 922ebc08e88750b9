// The config file's shape (SPEC §4) as zod schemas, and the value checks they share with the
// environment and flag overrides. The keys a mapping allows are read from these schemas
// (allowedKeys), so an unknown-key message can never disagree with what is accepted.
import path from 'node:path';
import { z } from 'zod';
import { webhooksSchema } from './webhooks.ts';
import { LIMIT_MAX, LIMIT_MIN, parseKeyTemplate } from '../domain/gates.ts';
import { approvalSchema } from './approval.ts';
import { freezesSchema } from './freezes.ts';
import { ROLES } from '../domain/types.ts';
import { checkDuration, MAX_AGE_MS } from './duration.ts';
import { kindOf, NO_SHELL } from './messages.ts';
import { compileParamsSchema, isPlainObject } from './params.ts';

/** Actor names Lifeline writes itself (runner, recovery, no-auth callers): no token may take them. */
export const RESERVED_ACTORS = ['system', 'runner', 'recovery', 'anonymous'];

export const PLAN_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TOKEN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
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
  'LIFELINE_STACK',
  'LIFELINE_UNIT',
  'LIFELINE_UNIT_INDEX',
  'LIFELINE_INPUTS',
];

// Built once (zod compiles each schema on first use, which costs milliseconds); everything that
// depends on the config's folder or environment happens in the loader, after parsing.
let built: { top: ReturnType<typeof topSchema>; plan: ReturnType<typeof planSchema> } | undefined;
export function schemas() {
  return (built ??= { top: topSchema(), plan: planSchema() });
}

export type TopFile = z.output<ReturnType<typeof topSchema>>;
export type PlanFile = z.output<ReturnType<typeof planSchema>>;

/**
 * The keys the mapping at `at` (a path inside `schema`'s input) allows, read from the schema;
 * [] where there is no fixed set of keys (a record, an unknown value, a scalar).
 */
export function allowedKeys(schema: z.ZodType, at: readonly PropertyKey[]): string[] {
  let s: z.core.$ZodType | undefined = unwrap(schema);
  for (const seg of at) {
    if (!s) return [];
    const def: z.core.$ZodTypeDef = s._zod.def;
    if (def.type === 'object' && typeof seg === 'string') {
      s = Object.hasOwn((def as z.core.$ZodObjectDef).shape, seg)
        ? (def as z.core.$ZodObjectDef).shape[seg]
        : undefined;
    } else if (def.type === 'array' && typeof seg === 'number') {
      s = (def as z.core.$ZodArrayDef).element;
    } else return [];
    s = s && unwrap(s);
  }
  return s?._zod.def.type === 'object' ? Object.keys((s._zod.def as z.core.$ZodObjectDef).shape) : [];
}

/** Looks through optional, nullable and transforms to the schema that checks the input. */
function unwrap(s: z.core.$ZodType): z.core.$ZodType {
  for (;;) {
    const def: z.core.$ZodTypeDef = s._zod.def;
    if (def.type === 'optional' || def.type === 'nullable') s = (def as z.core.$ZodOptionalDef).innerType;
    else if (def.type === 'pipe') s = (def as z.core.$ZodPipeDef).in;
    else return s;
  }
}

function topSchema() {
  return z.strictObject({
    server: z
      .strictObject({
        host: z.unknown().transform(via(checkHost)).optional(),
        port: z.unknown().transform(via(checkPort)).optional(),
        // Extra Host names a browser may use to reach the server (behind a proxy); see docs/security.md.
        allowed_hosts: z.array(z.string().transform(via(checkAllowedHost))).optional(),
      })
      .optional(),
    db: z.string().transform(via(checkDb)).optional(),
    data_dir: z.string().transform(via(checkPathText)).optional(),
    auth: authSchema().optional(),
    plans: z.unknown().optional(), // checked plan by plan with planSchema, so every plan's problems are told
    lease_ttl: durationSchema(1).optional(),
    reap_interval: durationSchema(1).optional(),
    start_deadline: durationSchema(1).optional(),
    durable_commits: z.boolean().optional(),
    // Which supervisor starts attempts: the long-lived perl runner (default) or supervisor.sh per attempt.
    supervisor: z.enum(['perl', 'sh']).optional(),
    webhooks: webhooksSchema().optional(),
    // SPEC §13.2: scheduled freezes.
    freezes: freezesSchema().optional(),
    // SPEC §11: ages after which an ended attempt's log events are archived and its run dir removed.
    retention: z.strictObject({ logs: ageSchema().optional(), run_dirs: ageSchema().optional() }).optional(),
    log_limit: z
      .strictObject({
        lines: z.number().int().min(1).optional(),
        bytes: z.number().int().min(1).optional(),
        events: z.number().int().min(1).optional(),
      })
      .optional(),
    database: z
      .strictObject({
        pool_max: z.number().int().min(1).max(1000).optional(),
        connect_timeout: durationSchema(1).optional(),
        statement_timeout: durationSchema(1).optional(),
        idle_in_transaction_timeout: durationSchema(1).optional(),
      })
      .optional(),
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
      check_timeout: durationSchema(1).optional(),
      verify: z.strictObject({ deploy: z.boolean().optional(), teardown: z.boolean().optional() }).optional(),
      cancel_grace: durationSchema(0).optional(),
      retry: retrySchema().optional(),
      check_every: durationSchema(1).optional(),
      self_heal: z.boolean({ error: 'expected true or false' }).optional(),
      concurrency: concurrencySchema().optional(),
      approval: approvalSchema().optional(), // SPEC §13.3
      env: z.unknown().transform(planEnv).optional(),
      env_passthrough: envPassthroughSchema().optional(),
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

/** SPEC §13.1: `{key, limit, when_busy?, queue_timeout?}`; the key template is parsed here. */
function concurrencySchema() {
  return z.strictObject(
    {
      key: z.string({ error: 'expected a string such as "proxmox-${params.node}"' }).transform((t, zc) => {
        const r = parseKeyTemplate(t);
        if (!r.ok) {
          zc.addIssue({ code: 'custom', message: r.reason });
          return z.NEVER;
        }
        return { template: t, parts: r.parts };
      }),
      limit: z
        .number({ error: `expected a whole number from ${LIMIT_MIN} to ${LIMIT_MAX}` })
        .int(`expected a whole number from ${LIMIT_MIN} to ${LIMIT_MAX}`)
        .min(LIMIT_MIN, `expected a whole number from ${LIMIT_MIN} to ${LIMIT_MAX}`)
        .max(LIMIT_MAX, `expected a whole number from ${LIMIT_MIN} to ${LIMIT_MAX}`),
      when_busy: z.enum(['queue', 'reject'], { error: 'expected queue or reject' }).optional(),
      queue_timeout: durationSchema(1).optional(),
    },
    {
      error: (iss) =>
        iss.code === 'invalid_type'
          ? `expected a mapping like {key: "proxmox-\${params.node}", limit: 2, when_busy: queue}, got ${kindOf(iss.input)}`
          : undefined,
    },
  );
}

/** SPEC §9.1: `{max, backoff, max_backoff?}`; max_backoff defaults to 10 × backoff (at most 1 h). */
function retrySchema() {
  return z
    .strictObject(
      {
        max: z
          .number({ error: 'expected a whole number of retries, at least 1' })
          .int('expected a whole number of retries, at least 1')
          .min(1, 'expected a whole number of retries, at least 1')
          .max(100, 'at most 100 retries'),
        backoff: durationSchema(1),
        max_backoff: durationSchema(1).optional(),
      },
      {
        error: (iss) =>
          iss.code === 'invalid_type'
            ? `expected a mapping like {max: 3, backoff: 30s, max_backoff: 10m}, got ${kindOf(iss.input)}`
            : undefined,
      },
    )
    .superRefine((r, zc) => {
      if (r.max_backoff !== undefined && r.max_backoff < r.backoff) {
        zc.addIssue({ code: 'custom', path: ['max_backoff'], message: 'must not be shorter than backoff' });
      }
    });
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

/** An age (retention): a duration like the others, but up to MAX_AGE_MS since no timer is set from it. */
function ageSchema() {
  return z.unknown().transform((v, zc) => {
    const r = checkDuration(v, MAX_AGE_MS);
    if ('reason' in r) {
      zc.addIssue({ code: 'custom', message: r.reason });
      return z.NEVER;
    }
    if (r.ms < 1) {
      zc.addIssue({ code: 'custom', message: 'must be longer than 0' });
      return z.NEVER;
    }
    return r.ms;
  });
}

/** Names of server variables a plan may see (issue 9): everything else of the server's env stays out. */
function envPassthroughSchema() {
  const name = z
    .string()
    .regex(ENV_NAME_RE, 'invalid variable name: expected letters, digits and _, not starting with a digit')
    .refine((n) => !RUNNER_ENV_NAMES.includes(n), 'is set by the runner for every attempt (SPEC §4)');
  return z
    .array(name, {
      error: (iss) =>
        iss.code === 'invalid_type'
          ? `expected a list of variable names, got ${kindOf(iss.input)}`
          : undefined,
    })
    .transform((list, zc) => {
      list.forEach((n, i) => {
        if (list.indexOf(n) < i) zc.addIssue({ code: 'custom', path: [i], message: `${n} is listed twice` });
      });
      return list;
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

export function isReason(r: unknown): r is { reason: string } {
  return typeof r === 'object' && r !== null && 'reason' in r && Object.keys(r).length === 1;
}

// --- value checks (shared by the file, the environment and the flags) ---------------------------

function checkAllowedHost(v: string): string | { reason: string } {
  return /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(:\d{1,5})?$/i.test(v)
    ? v.toLowerCase()
    : { reason: 'expected a host name or [IPv6] address, optionally with :port' };
}

export function checkHost(v: unknown): string | { reason: string } {
  if (typeof v !== 'string' || v === '' || /[\s\0]/.test(v))
    return { reason: 'expected a host name or IP address' };
  return v;
}

export function checkPort(v: unknown): number | { reason: string } {
  const n = typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    return { reason: 'expected a port number from 0 to 65535' };
  }
  return n;
}

export function checkPathText(v: string): string | { reason: string } {
  if (v === '') return { reason: 'must not be empty' };
  if (v.includes('\0')) return { reason: 'must not contain a NUL character' };
  return v;
}

/** `sqlite:<path>` or a `postgres://` / `postgresql://` URL; returned unchanged when valid. */
export function checkDb(v: string): string | { reason: string } {
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
export function resolveDb(db: string, baseDir: string): string {
  return db.startsWith('sqlite:') ? `sqlite:${path.resolve(baseDir, db.slice('sqlite:'.length))}` : db;
}
