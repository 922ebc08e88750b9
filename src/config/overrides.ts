// The LIFELINE_* environment variables and `lifeline serve` flags that override the file (SPEC §4).
// Each value goes through the same check as in the file; a bad one is a ConfigIssue naming the
// variable or flag, never quoting the value.
import path from 'node:path';
import { checkDuration } from './duration.ts';
import type { ConfigIssue } from './errors.ts';
import { checkDb, checkHost, checkPathText, checkPort, isReason, resolveDb } from './schema.ts';

/** Command-line flags of `lifeline serve`; they win over the file and the environment. */
export interface ConfigOverrides {
  db?: string;
  host?: string;
  port?: number;
}

export interface EnvOverrides {
  db?: string;
  host?: string;
  port?: number;
  dataDir?: string;
  leaseTtlMs?: number;
  reapIntervalMs?: number;
}

export function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** LIFELINE_* variables. Unset or empty means "not set". Relative paths resolve against the working directory. */
export function readEnvOverrides(env: NodeJS.ProcessEnv, issues: ConfigIssue[]): EnvOverrides {
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

export function readFlagOverrides(o: ConfigOverrides | undefined, issues: ConfigIssue[]): ConfigOverrides {
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
