// A plan's `params` (SPEC §4): a JSON Schema (draft 2020-12) with top-level `type: object`,
// compiled once with Ajv at load time so a bad schema is a config error, not a 500 later.
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';

export interface ParamFieldError {
  field: string;
  reason: string;
}

export interface CompiledParams {
  /** A private deep copy of the schema the plan declared (`{type: 'object'}` when none). */
  paramsSchema: Record<string, unknown>;
  validateParams(params: unknown): ParamFieldError[];
  secretParams: string[];
}

export const DEFAULT_PARAMS_SCHEMA: Readonly<Record<string, unknown>> = Object.freeze({ type: 'object' });

// Compiled validators by schema text: a validator is a pure function of its schema, so configs loaded
// again (tests build many) reuse it. Schemas without `$id` share one Ajv instance (creating one costs
// tens of ms); a schema that declares an `$id` or an anchor gets its own, so ids never collide.
const compiled = new Map<string, ValidateFunction>();
const DEFAULT_KEY = JSON.stringify(DEFAULT_PARAMS_SCHEMA);
/** The validator of DEFAULT_PARAMS_SCHEMA for a value already known to be a plain object. */
const ANY_OBJECT = Object.assign(() => true, { errors: null }) as unknown as ValidateFunction;
let sharedAjv: Ajv2020 | undefined;

function newAjv(): Ajv2020 {
  return new Ajv2020({
    strict: true, // unknown keywords (`minimun`), missing types and stray `required` names are errors
    allErrors: true,
    allowUnionTypes: true, // `type: [string, 'null']` is plain JSON Schema
    // Never change the caller's data: no defaults filled in, no coercion, nothing removed.
    useDefaults: false,
    coerceTypes: false,
    removeAdditional: false,
  });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Compiles a plan's params schema. Throws an Error whose message is a plain reason. */
export function compileParamsSchema(schema: unknown): CompiledParams {
  if (schema === undefined) schema = DEFAULT_PARAMS_SCHEMA;
  if (!isPlainObject(schema)) {
    throw new Error('expected a JSON Schema (a mapping) with type: object');
  }
  if (schema.type !== 'object') {
    throw new Error('the schema must have type: object at the top level (params are always an object)');
  }
  let paramsSchema: Record<string, unknown>;
  try {
    paramsSchema = structuredClone(schema);
  } catch {
    throw new Error('expected plain JSON data');
  }
  const placement: string[] = [];
  checkWriteOnly(paramsSchema, '#', false, placement);
  if (placement.length > 0) throw new Error(placement.join('; '));

  const key = JSON.stringify(paramsSchema);
  // `{type: object}` (every plan without params) asks only for an object, which validateParams checks
  // before any schema: no Ajv for it. An Ajv instance and the meta-schema it validates schemas with
  // cost about 0.2 s of every server's start.
  let validate = key === DEFAULT_KEY ? ANY_OBJECT : compiled.get(key);
  if (!validate) {
    const ajv = /"\$(id|anchor|dynamicAnchor)"/.test(key) ? newAjv() : (sharedAjv ??= newAjv());
    if (!ajv.validateSchema(paramsSchema)) {
      throw new Error(`invalid JSON Schema: ${explainMetaSchemaErrors(ajv.errors ?? [])}`);
    }
    try {
      validate = ajv.compile(paramsSchema);
    } catch (e) {
      throw new Error(`invalid JSON Schema: ${explainAjvCompileError((e as Error).message)}`);
    }
    compiled.set(key, validate);
  }
  const fn = validate;

  const props = isPlainObject(paramsSchema.properties) ? paramsSchema.properties : {};
  const secretParams = Object.keys(props).filter((k) => {
    const s = props[k];
    return isPlainObject(s) && s.writeOnly === true;
  });

  return {
    paramsSchema,
    secretParams,
    validateParams(params: unknown): ParamFieldError[] {
      if (!isPlainObject(params)) return [{ field: 'params', reason: 'must be an object' }];
      if (fn(params)) return [];
      const out: ParamFieldError[] = [];
      const seen = new Set<string>();
      for (const e of fn.errors ?? []) {
        if (e.keyword === 'if') continue; // the `then`/`else` errors themselves are reported
        const fe = toFieldError(e);
        const k = `${fe.field}\u0000${fe.reason}`;
        if (!seen.has(k)) {
          seen.add(k);
          out.push(fe);
        }
      }
      return out;
    },
  };
}

/** First meta-schema error per schema location, e.g. `#/properties/a/type must be equal to one of the allowed values`. */
function explainMetaSchemaErrors(errors: ErrorObject[]): string {
  const seen = new Map<string, string>();
  for (const e of errors) {
    if (!seen.has(e.instancePath))
      seen.set(e.instancePath, `#${e.instancePath} ${e.message ?? 'is invalid'}`);
  }
  return [...seen.values()].join('; ') || 'does not match the JSON Schema meta-schema';
}

function explainAjvCompileError(msg: string): string {
  const fmt = /^unknown format "([^"]*)" ignored in schema at path "([^"]*)"/.exec(msg);
  if (fmt) {
    return `format "${fmt[1]}" at ${fmt[2]} is not supported (no format validators are installed); use pattern instead`;
  }
  return msg;
}

function toFieldError(e: ErrorObject): ParamFieldError {
  const segs = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/').map(unescapePointer);
  const p = e.params as Record<string, unknown>;
  let reason = e.message ?? 'is invalid';
  switch (e.keyword) {
    case 'required':
      segs.push(String(p.missingProperty));
      reason = 'is required';
      break;
    case 'dependentRequired':
      segs.push(String(p.missingProperty));
      reason = `is required when ${String(p.property)} is set`;
      break;
    case 'additionalProperties':
      segs.push(String(p.additionalProperty));
      reason = 'is not allowed';
      break;
    case 'unevaluatedProperties':
      segs.push(String(p.unevaluatedProperty));
      reason = 'is not allowed';
      break;
  }
  return { field: ['params', ...segs].join('.'), reason };
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

// Keywords whose value is a subschema, a map of subschemas, or a list of subschemas.
const ONE_SCHEMA = [
  'additionalProperties',
  'unevaluatedProperties',
  'items',
  'additionalItems',
  'unevaluatedItems',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
];
const SCHEMA_MAP = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SCHEMA_LIST = ['prefixItems', 'allOf', 'anyOf', 'oneOf', 'items'];

/**
 * `writeOnly: true` marks a secret param, which the engine masks in events, logs and responses.
 * Masking works on top-level params only, so a `writeOnly` anywhere else would promise a masking that
 * never happens: refuse it. A secret must not carry `default`/`examples` either, since the schema
 * itself is served by GET /v1/plans.
 */
function checkWriteOnly(schema: unknown, at: string, isTopLevelProperty: boolean, out: string[]): void {
  if (!isPlainObject(schema)) return;
  if (schema.writeOnly === true) {
    if (!isTopLevelProperty) {
      out.push(
        `writeOnly at ${at} is only supported on a top-level param (properties.<name>); nested secrets would not be masked`,
      );
    } else {
      for (const k of ['default', 'examples']) {
        if (k in schema) out.push(`the writeOnly param at ${at} must not have ${k}: the schema is public`);
      }
    }
  }
  for (const kw of ONE_SCHEMA) {
    if (kw in schema) checkWriteOnly(schema[kw], `${at}/${kw}`, false, out);
  }
  for (const kw of SCHEMA_MAP) {
    const m = schema[kw];
    if (!isPlainObject(m)) continue;
    for (const [name, sub] of Object.entries(m)) {
      checkWriteOnly(sub, `${at}/${kw}/${escapePointer(name)}`, at === '#' && kw === 'properties', out);
    }
  }
  for (const kw of SCHEMA_LIST) {
    const l = schema[kw];
    if (!Array.isArray(l)) continue;
    l.forEach((sub, i) => checkWriteOnly(sub, `${at}/${kw}/${i}`, false, out));
  }
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
