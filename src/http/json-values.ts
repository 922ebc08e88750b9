// Values JSON.parse accepts that the store cannot keep faithfully: numbers beyond a double (`1e999`
// parses to Infinity and is stored as null) and strings with a lone UTF-16 surrogate (`"\ud800"`, which
// strict JSON readers reject). A request body holding either is refused before anything reads it.
import type { FieldError } from '../domain/errors.ts';

/** With the u flag a surrogate matches only when it is not half of a pair. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

function fieldPath(path: string[]): string {
  return path.length === 0 ? 'body' : path.join('.');
}

/** The first value in a parsed body that cannot be stored as sent, or null. Iterative: any depth. */
export function findUnstorableValue(value: unknown): FieldError | null {
  const stack: [unknown, string[]][] = [[value, []]];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return { field: fieldPath(path), reason: 'is a number too large to store' };
    } else if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) {
        return { field: fieldPath(path), reason: 'contains a lone UTF-16 surrogate (not valid Unicode)' };
      }
    } else if (Array.isArray(v)) {
      v.forEach((child, i) => stack.push([child, [...path, String(i)]]));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (LONE_SURROGATE.test(k)) {
          return {
            field: fieldPath(path),
            reason: 'has a key with a lone UTF-16 surrogate (not valid Unicode)',
          };
        }
        stack.push([child, [...path, k]]);
      }
    }
  }
  return null;
}
