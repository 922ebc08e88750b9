// The words of config errors: zod's messages reworded for operators, field paths, unknown-key
// suggestions (`did you mean …?`) and file read errors. No message ever quotes a configured value
// (it may be a token or a database password, SPEC §8.9).
import type { z } from 'zod';

export type Seg = string | number;

export const NO_SHELL =
  'expected a list of strings (argv), not a string: Lifeline never runs plans through a shell, ' +
  'so write ["./deploy.sh", "--flag"] rather than "./deploy.sh --flag"';

export function kindOf(v: unknown): string {
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
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  if (iss.code === 'invalid_type') {
    if (iss.input === undefined) return 'is required';
    return `expected ${NOUNS[iss.expected] ?? iss.expected}, got ${kindOf(iss.input)}`;
  }
  if (iss.code === 'too_small' && iss.origin === 'string' && iss.minimum === 1) return 'must not be empty';
  return undefined;
};

export function formatPath(p: readonly Seg[]): string {
  let s = '';
  for (const seg of p) {
    if (typeof seg === 'number') s += `[${seg}]`;
    else s += s === '' ? seg : `.${seg}`;
  }
  return s;
}

/**
 * Adds one message per zod issue at `prefix` + the issue's path. `keysAt` gives the keys allowed
 * at a path relative to the schema that produced the issues (for unknown-key suggestions).
 */
export function collectZodIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: readonly Seg[],
  keysAt: (p: readonly Seg[]) => string[],
  add: (p: readonly Seg[], m: string) => void,
): void {
  for (const iss of issues) {
    const rel = iss.path as Seg[];
    const p = [...prefix, ...rel];
    if (iss.code === 'unrecognized_keys') {
      const allowed = keysAt(rel);
      for (const k of iss.keys) add([...p, k], unknownKeyMessage(k, allowed));
    } else {
      add(p, iss.message);
    }
  }
}

function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  if (allowed.includes('token_sha256') && /^(token|value|secret|password)$/i.test(key)) {
    return 'unknown key: never put a token in the file; use token_env (a variable holding it) or token_sha256';
  }
  const near = nearest(key, allowed);
  if (near) return `unknown key (did you mean ${near}?)`;
  return allowed.length > 0 ? `unknown key (expected one of: ${allowed.join(', ')})` : 'unknown key';
}

/** The allowed key the typo most likely meant: within 2 edits, or a prefix of it (`token_sha`). */
export function nearest(key: string, allowed: readonly string[]): string | undefined {
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

export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

export function readErrorMessage(e: unknown, file: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  const hint = ' (pass --config FILE or set LIFELINE_CONFIG)';
  if (code === 'ENOENT') return `cannot read the config file: ${file} does not exist${hint}`;
  if (code === 'EISDIR') return `cannot read the config file: ${file} is a directory${hint}`;
  if (code === 'EACCES') return `cannot read the config file ${file}: permission denied`;
  return `cannot read the config file ${file}: ${(e as Error).message}`;
}
