// The stack spec of SPEC §12.2: validation, expansion into unit deployments, and the dependency graph.
// Pure: no I/O. Whether a plan exists or its params fit its schema is the lifecycle's check.
import type { FieldError } from './errors.ts';
import { DEPLOYMENT_NAME, LABEL_KEY } from './types.ts';

export const STACK_NAME_MAX = 40;
export const UNIT_KEY = /^[a-z0-9][a-z0-9-]{0,19}$/;
export const COUNT_MAX = 100;
/** Unit entries of one spec, and unit deployments once expanded. */
export const UNITS_MAX = 100;
export const EXPANDED_MAX = 1000;
const DEPLOYMENT_NAME_MAX = 63;
const MAX_LABELS = 64;
const MAX_LABEL_VALUE = 256;

export const ON_FAILURE = ['stop', 'continue'] as const;
export type OnFailure = (typeof ON_FAILURE)[number];

/** The labels every unit deployment carries (SPEC §12.2). */
export const STACK_LABEL = 'lifeline.stack';
export const UNIT_LABEL = 'lifeline.unit';
export const INDEX_LABEL = 'lifeline.index';

export interface UnitSpec {
  key: string;
  plan: string;
  params: Record<string, unknown>;
  /** 1 (the default) names the unit `<stack>-<key>`; more names `<stack>-<key>-<i>`. */
  count: number;
  after: string[];
}

export interface StackSpec {
  name: string;
  on_failure: OnFailure;
  labels: Record<string, string>;
  units: UnitSpec[];
}

/** One unit deployment of an expanded spec. */
export interface ExpandedUnit {
  key: string;
  /** 1…count for a unit with count > 1; null for a single unit. */
  index: number | null;
  /** The deployment's name. */
  name: string;
  plan: string;
  params: Record<string, unknown>;
  labels: Record<string, string>;
}

export type SpecResult = { ok: true; spec: StackSpec } | { ok: false; errors: FieldError[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function isStackName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= STACK_NAME_MAX && DEPLOYMENT_NAME.test(name);
}

/** The deployment name of a unit: `<stack>-<key>`, or `<stack>-<key>-<i>` for one of a counted unit. */
export function unitName(stack: string, key: string, index: number | null): string {
  return index === null ? `${stack}-${key}` : `${stack}-${key}-${index}`;
}

function checkLabels(v: unknown, errors: FieldError[]): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) {
    errors.push({ field: 'labels', reason: 'must be an object' });
    return {};
  }
  const entries = Object.entries(v);
  if (entries.length > MAX_LABELS) errors.push({ field: 'labels', reason: `at most ${MAX_LABELS} labels` });
  for (const [k, val] of entries) {
    if (!LABEL_KEY.test(k))
      errors.push({
        field: `labels.${k}`,
        reason: 'label keys are 1-63 of [a-zA-Z0-9._/-], starting alphanumeric',
      });
    else if (k.startsWith('lifeline.'))
      errors.push({ field: `labels.${k}`, reason: 'lifeline.* labels are set by Lifeline' });
    else if (typeof val !== 'string')
      errors.push({ field: `labels.${k}`, reason: 'label values are strings' });
    else if (val.length > MAX_LABEL_VALUE)
      errors.push({ field: `labels.${k}`, reason: `at most ${MAX_LABEL_VALUE} characters` });
  }
  return v as Record<string, string>;
}

const TOP_KEYS = new Set(['name', 'on_failure', 'labels', 'units']);
const UNIT_KEYS = new Set(['key', 'plan', 'params', 'count', 'after']);

/** Checks a spec as sent (parsed JSON or YAML); every error names its field, e.g. `units[2].after[0]`. */
export function parseStackSpec(input: unknown): SpecResult {
  const errors: FieldError[] = [];
  if (!isObject(input)) return { ok: false, errors: [{ field: '', reason: 'the spec must be an object' }] };
  for (const k of Object.keys(input))
    if (!TOP_KEYS.has(k)) errors.push({ field: k, reason: 'is not a stack spec field' });
  const name = input.name;
  if (!isStackName(name))
    errors.push({
      field: 'name',
      reason: `must match ${DEPLOYMENT_NAME.source} and be at most ${STACK_NAME_MAX} characters`,
    });
  let onFailure: OnFailure = 'stop';
  if (input.on_failure !== undefined) {
    if (!ON_FAILURE.includes(input.on_failure as OnFailure))
      errors.push({ field: 'on_failure', reason: `must be one of ${ON_FAILURE.join(', ')}` });
    else onFailure = input.on_failure as OnFailure;
  }
  const labels = checkLabels(input.labels, errors);
  const units: UnitSpec[] = [];
  if (!Array.isArray(input.units) || input.units.length === 0) {
    errors.push({ field: 'units', reason: 'must be a non-empty list' });
  } else if (input.units.length > UNITS_MAX) {
    errors.push({ field: 'units', reason: `at most ${UNITS_MAX} units` });
  } else {
    input.units.forEach((u, i) => {
      const unit = parseUnit(u, `units[${i}]`, errors);
      if (unit) units.push(unit);
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  const spec: StackSpec = { name: name as string, on_failure: onFailure, labels, units };
  checkGraph(spec, errors);
  checkNames(spec, errors);
  return errors.length > 0 ? { ok: false, errors } : { ok: true, spec };
}

function parseUnit(u: unknown, at: string, errors: FieldError[]): UnitSpec | null {
  if (!isObject(u)) {
    errors.push({ field: at, reason: 'must be an object' });
    return null;
  }
  const before = errors.length;
  for (const k of Object.keys(u))
    if (!UNIT_KEYS.has(k)) errors.push({ field: `${at}.${k}`, reason: 'is not a unit field' });
  if (typeof u.key !== 'string' || !UNIT_KEY.test(u.key))
    errors.push({ field: `${at}.key`, reason: `must match ${UNIT_KEY.source}` });
  if (typeof u.plan !== 'string' || u.plan.length === 0)
    errors.push({ field: `${at}.plan`, reason: 'must name a plan' });
  if (u.params !== undefined && !isObject(u.params))
    errors.push({ field: `${at}.params`, reason: 'must be an object' });
  const count = u.count ?? 1;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > COUNT_MAX)
    errors.push({ field: `${at}.count`, reason: `must be an integer from 1 to ${COUNT_MAX}` });
  const after: string[] = [];
  if (u.after !== undefined) {
    if (!Array.isArray(u.after)) errors.push({ field: `${at}.after`, reason: 'must be a list of unit keys' });
    else
      u.after.forEach((a, j) => {
        if (typeof a !== 'string') errors.push({ field: `${at}.after[${j}]`, reason: 'must be a unit key' });
        else if (after.includes(a))
          errors.push({ field: `${at}.after[${j}]`, reason: `${a} is listed twice` });
        else after.push(a);
      });
  }
  if (errors.length > before) return null;
  return {
    key: u.key as string,
    plan: u.plan as string,
    params: (u.params as Record<string, unknown> | undefined) ?? {},
    count: count as number,
    after,
  };
}

/** Unique keys, `after` naming known keys other than its own, and no cycle (named in the error). */
function checkGraph(spec: StackSpec, errors: FieldError[]): void {
  const index = new Map<string, number>();
  spec.units.forEach((u, i) => {
    if (index.has(u.key))
      errors.push({
        field: `units[${i}].key`,
        reason: `${u.key} is also the key of units[${index.get(u.key)}]`,
      });
    else index.set(u.key, i);
  });
  spec.units.forEach((u, i) =>
    u.after.forEach((a, j) => {
      if (a === u.key)
        errors.push({ field: `units[${i}].after[${j}]`, reason: `unit ${a} cannot come after itself` });
      else if (!index.has(a))
        errors.push({ field: `units[${i}].after[${j}]`, reason: `no unit has the key ${a}` });
    }),
  );
  if (errors.length > 0) return;
  const cycle = findCycle(spec);
  if (cycle) {
    const i = index.get(cycle[0])!;
    errors.push({ field: `units[${i}].after`, reason: `dependency cycle: ${cycle.join(' -> ')}` });
  }
}

/** A cycle of `after` edges as keys, first key repeated at the end; null when the graph is acyclic. */
export function findCycle(spec: { units: readonly Pick<UnitSpec, 'key' | 'after'>[] }): string[] | null {
  const after = new Map(spec.units.map((u) => [u.key, u.after]));
  const colour = new Map<string, 1 | 2>();
  const path: string[] = [];
  const visit = (k: string): string[] | null => {
    colour.set(k, 1);
    path.push(k);
    for (const a of after.get(k) ?? []) {
      if (colour.get(a) === 1) return [...path.slice(path.indexOf(a)), a];
      if (!colour.has(a)) {
        const found = visit(a);
        if (found) return found;
      }
    }
    path.pop();
    colour.set(k, 2);
    return null;
  };
  for (const u of spec.units) {
    if (colour.has(u.key)) continue;
    const found = visit(u.key);
    if (found) return found;
  }
  return null;
}

/** Expanded names within the deployment name rule, unique, and not too many of them. */
function checkNames(spec: StackSpec, errors: FieldError[]): void {
  let total = 0;
  const seen = new Map<string, number>();
  spec.units.forEach((u, i) => {
    total += u.count;
    const longest = unitName(spec.name, u.key, u.count > 1 ? u.count : null);
    if (longest.length > DEPLOYMENT_NAME_MAX) {
      errors.push({
        field: `units[${i}].key`,
        reason: `the deployment name ${longest} is longer than ${DEPLOYMENT_NAME_MAX} characters`,
      });
      return;
    }
    for (const { name } of expandUnit(spec.name, u)) {
      const other = seen.get(name);
      if (other !== undefined) {
        errors.push({
          field: `units[${i}].key`,
          reason: `the deployment name ${name} is also one of units[${other}]`,
        });
        return;
      }
      seen.set(name, i);
    }
  });
  if (total > EXPANDED_MAX)
    errors.push({
      field: 'units',
      reason: `at most ${EXPANDED_MAX} unit deployments once counted (${total})`,
    });
}

function expandUnit(stack: string, u: UnitSpec): ExpandedUnit[] {
  const out: ExpandedUnit[] = [];
  for (let i = 1; i <= u.count; i++) {
    const index = u.count > 1 ? i : null;
    const labels: Record<string, string> = { [STACK_LABEL]: stack, [UNIT_LABEL]: u.key };
    if (index !== null) labels[INDEX_LABEL] = String(index);
    out.push({
      key: u.key,
      index,
      name: unitName(stack, u.key, index),
      plan: u.plan,
      params: u.params,
      labels,
    });
  }
  return out;
}

/** Every unit deployment of a valid spec, in spec order; labels: the stack's, then lifeline.*. */
export function expandSpec(spec: StackSpec): ExpandedUnit[] {
  return spec.units.flatMap((u) =>
    expandUnit(spec.name, u).map((e) => ({ ...e, labels: { ...spec.labels, ...e.labels } })),
  );
}

/** The depth of each key: 0 without `after`, else one more than the deepest unit it comes after. */
export function unitDepths(spec: { units: readonly Pick<UnitSpec, 'key' | 'after'>[] }): Map<string, number> {
  const after = new Map(spec.units.map((u) => [u.key, u.after]));
  const depth = new Map<string, number>();
  const of = (k: string, seen: Set<string>): number => {
    const known = depth.get(k);
    if (known !== undefined) return known;
    if (seen.has(k)) throw new Error(`unitDepths: cycle through ${k}`);
    seen.add(k);
    let d = 0;
    for (const a of after.get(k) ?? []) d = Math.max(d, of(a, seen) + 1);
    depth.set(k, d);
    return d;
  };
  for (const u of spec.units) of(u.key, new Set());
  return depth;
}

/** Keys in dependency order: by depth, then spec order (what `stack show` and the dashboard list). */
export function orderedKeys(spec: { units: readonly Pick<UnitSpec, 'key' | 'after'>[] }): string[] {
  const depth = unitDepths(spec);
  return spec.units
    .map((u, i) => ({ k: u.key, d: depth.get(u.key)!, i }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .map((x) => x.k);
}

/** For each deployment name, the deployment names it comes after (every instance of each `after` key). */
export function unitPredecessors(spec: StackSpec): Map<string, string[]> {
  const names = new Map<string, string[]>();
  for (const u of spec.units)
    names.set(
      u.key,
      expandUnit(spec.name, u).map((e) => e.name),
    );
  const out = new Map<string, string[]>();
  for (const u of spec.units) {
    const before = u.after.flatMap((a) => names.get(a) ?? []);
    for (const name of names.get(u.key)!) out.set(name, before);
  }
  return out;
}

/** For each deployment name, the deployment names that come after it (what a teardown waits for). */
export function unitSuccessors(spec: StackSpec): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of expandSpec(spec)) out.set(e.name, []);
  for (const [name, before] of unitPredecessors(spec)) for (const b of before) out.get(b)!.push(name);
  return out;
}
