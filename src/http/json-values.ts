// What a request body may not carry because it would be stored as something other than what was sent:
// - in the text: a key given twice (JSON.parse keeps the last), an integer a double cannot hold exactly
//   (9007199254740993 would reach a plan as …992);
// - in the value: numbers beyond a double (`1e999` parses to Infinity and is stored as null), strings
//   with a lone UTF-16 surrogate (`"\ud800"`), and NUL, which PostgreSQL cannot store in text or jsonb.
// Invalid UTF-8 is refused before any of this, where the body is decoded (app.ts).
import type { FieldError } from '../domain/errors.ts';

/** With the u flag a surrogate matches only when it is not half of a pair. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

function fieldPath(path: string[]): string {
  return path.length === 0 ? 'body' : path.join('.');
}

function stringProblem(s: string, what: string): string | null {
  if (s.includes('\0')) return `${what} a NUL character (\\u0000), which cannot be stored`;
  if (LONE_SURROGATE.test(s)) return `${what} a lone UTF-16 surrogate (not valid Unicode)`;
  return null;
}

/** The first value in a parsed body that cannot be stored as sent, or null. Iterative: any depth. */
export function findUnstorableValue(value: unknown): FieldError | null {
  const stack: [unknown, string[]][] = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { field: fieldPath(path), reason: 'is a number too large to store' };
    } else if (typeof v === 'string') {
      const problem = stringProblem(v, 'contains');
      if (problem) return { field: fieldPath(path), reason: problem };
    } else if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, [...path, String(i)]]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const problem = stringProblem(k, 'has a key with');
        if (problem) return { field: fieldPath(path), reason: problem };
        stack.push([child, [...path, k]]);
      }
    }
  }
  return null;
}

interface Frame {
  /** Keys seen so far in an object; null for an array. */
  keys: Set<string> | null;
  /** The current key (object) or index (array), for the field path; null before an object's first key. */
  at: string | null;
  expectKey: boolean;
}

const INTEGER = /^-?\d+$/;
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** An integer token that parses to a different integer (beyond 2^53, a double rounds it). */
function changedInteger(token: string): boolean {
  if (!INTEGER.test(token) || token.replace('-', '').length < 16) return false;
  return BigInt(token) !== BigInt(Number(token));
}

/**
 * Scans JSON text that JSON.parse already accepted for what parsing silently changes: a duplicate key
 * or an integer beyond what a double holds exactly. Returns the first such field, or null.
 */
export function findLossyJson(text: string): FieldError | null {
  const stack: Frame[] = [];
  const path = () => fieldPath(stack.flatMap((f) => (f.at === null ? [] : [f.at])));
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '{' || c === '[') {
      stack.push({ keys: c === '{' ? new Set() : null, at: c === '[' ? '0' : null, expectKey: c === '{' });
      i++;
    } else if (c === '}' || c === ']') {
      stack.pop();
      i++;
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top.keys) top.expectKey = true;
      else top.at = String(Number(top.at) + 1);
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        top.expectKey = false;
        top.at = key;
        if (top.keys.has(key)) return { field: path(), reason: 'is given more than once' };
        top.keys.add(key);
      }
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const token = NUMBER.exec(text)![0];
      if (changedInteger(token)) {
        return {
          field: path(),
          reason: `is an integer beyond ±${Number.MAX_SAFE_INTEGER} that would be stored rounded; send it as a string`,
        };
      }
      i += token.length;
    } else {
      i++; // whitespace, ':', and the letters of true/false/null
    }
  }
  return null;
}
