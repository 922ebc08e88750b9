// `--param k=v` and `--label k=v`: parsing on the command line, and coercion of param values by the plan's
// params JSON Schema (GET /v1/plans), so that `replicas=3` is sent as the integer 3.
import { InvalidArgumentError } from 'commander';

/** A commander argument parser that accumulates `k=v` pairs; no `=` or an empty key is a usage error. */
export function collectPair(value: string, previous: [string, string][] = []): [string, string][] {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got "${value}"`);
  return [...previous, [value.slice(0, eq), value.slice(eq + 1)]];
}

export function pairsToObject(pairs: [string, string][] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of pairs) out[k] = v;
  return out;
}

type Schema = Record<string, unknown>;

const JSON_TYPES = ['string', 'integer', 'number', 'boolean', 'null', 'array', 'object'] as const;
type JsonType = (typeof JSON_TYPES)[number];

function typeOfValue(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

/** The JSON types a (sub)schema admits, as far as can be told without a validator; empty = any. */
export function schemaTypes(schema: unknown, depth = 0): Set<JsonType> {
  const out = new Set<JsonType>();
  if (!schema || typeof schema !== 'object' || depth > 8) return out;
  const s = schema as Schema;
  const t = s.type;
  for (const name of Array.isArray(t) ? t : t !== undefined ? [t] : []) {
    if ((JSON_TYPES as readonly string[]).includes(name as string)) out.add(name as JsonType);
  }
  if (out.size === 0) {
    if ('const' in s) out.add(typeOfValue(s.const));
    if (Array.isArray(s.enum)) for (const v of s.enum) out.add(typeOfValue(v));
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      if (Array.isArray(s[key]))
        for (const sub of s[key] as unknown[]) schemaTypes(sub, depth + 1).forEach((x) => out.add(x));
    }
  }
  return out;
}

/** The schema of a top-level property, or of additional properties; undefined when it is not described. */
export function propertySchema(paramsSchema: Schema | undefined, key: string): Schema | undefined {
  if (!paramsSchema) return undefined;
  const props = paramsSchema.properties as Record<string, unknown> | undefined;
  if (props && typeof props === 'object' && Object.prototype.hasOwnProperty.call(props, key)) {
    const p = props[key];
    return p && typeof p === 'object' ? (p as Schema) : undefined;
  }
  const extra = paramsSchema.additionalProperties;
  return extra && typeof extra === 'object' ? (extra as Schema) : undefined;
}

const INTEGER = /^-?(0|[1-9][0-9]*)$/;
const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

/**
 * One value, by the types its schema admits: integer, number, boolean (true/false), null, array or object
 * (as JSON); a string otherwise. An undescribed property, or a value that fits none of the types, stays a
 * string and the server's validation has the last word.
 */
export function coerceValue(raw: string, schema: Schema | undefined): unknown {
  const types = schemaTypes(schema);
  if (types.size === 0) return raw;
  if (types.has('string') && types.size === 1) return raw;
  if (types.has('integer') && INTEGER.test(raw) && Number.isSafeInteger(Number(raw))) return Number(raw);
  if (types.has('number') && NUMBER.test(raw) && Number.isFinite(Number(raw))) return Number(raw);
  if (types.has('boolean') && (raw === 'true' || raw === 'false')) return raw === 'true';
  if (types.has('null') && raw === 'null') return null;
  if (types.has('array') || types.has('object')) {
    const t = raw.trimStart();
    if (t.startsWith('[') || t.startsWith('{')) {
      try {
        const v = JSON.parse(raw) as unknown;
        if ((Array.isArray(v) && types.has('array')) || (isPlainObject(v) && types.has('object'))) return v;
      } catch {
        // not JSON: leave it to the server
      }
    }
  }
  return raw;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function coerceParams(
  pairs: [string, string][] = [],
  paramsSchema: Schema | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of pairs) out[k] = coerceValue(v, propertySchema(paramsSchema, k));
  return out;
}
