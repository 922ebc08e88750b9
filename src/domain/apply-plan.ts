// The plan of an apply (SPEC §14.1): what carrying out a file would do to the objects as read, and a
// digest bound to the documents and to the version of everything read. Pure: no I/O, no clock.
import { createHash } from 'node:crypto';
import { LifelineError } from './errors.ts';
import { expandSpec, type StackSpec } from './stack-spec.ts';
import type { DeploymentState } from './types.ts';

/** The label an applied object carries: the source that applied it (prune touches only those). */
export const SOURCE_LABEL = 'lifeline.source';
export const MAX_DELETE_DEFAULT = 5;
export const SECRET_MASK = '***';

export interface DeploymentDoc {
  name: string;
  plan: string;
  params: Record<string, unknown>;
  labels: Record<string, string>;
}

export type ApplyDoc = { kind: 'stack'; spec: StackSpec } | { kind: 'deployment'; deployment: DeploymentDoc };

/** A deployment as read: a stack's unit or a standalone one. */
export interface CurrentDeployment {
  name: string;
  plan: string;
  params: Record<string, unknown>;
  labels: Record<string, string>;
  state: DeploymentState;
  version: number;
  /** The params of its last succeeded deploy; null when it never deployed. */
  deployed_params: Record<string, unknown> | null;
  /** The stack it is a unit of; null for a standalone deployment. */
  stack: string | null;
}

export interface CurrentStack {
  name: string;
  spec: StackSpec;
  /** The stack's labels as stored (the spec's and lifeline.source). */
  labels: Record<string, string>;
  version: number;
  units: CurrentDeployment[];
}

/** Everything read: the objects the file names and those labelled with its source. */
export interface ApplyWorld {
  stacks: CurrentStack[];
  /** Standalone deployments (a stack's units come with their stack). */
  deployments: CurrentDeployment[];
}

export type PlanAction = 'create' | 'update' | 'deploy' | 'teardown' | 'delete' | 'blocked' | 'unchanged';

export interface FieldChange {
  path: string;
  /** Absent when the field is new. */
  from?: unknown;
  /** Absent when the field goes. */
  to?: unknown;
}

export interface PlanItem {
  kind: 'stack' | 'deployment';
  name: string;
  action: PlanAction;
  /** create / update: the fields that change, secrets masked. */
  changes: FieldChange[];
  /** What is deployed after the spec writes: a stack's unit deployments, or the deployment itself. */
  deploy: string[];
  /** blocked: why. */
  reason?: string;
  /** The version read; null when the object does not exist. */
  version: number | null;
}

export interface ApplyPlan {
  source: string;
  prune: boolean;
  items: PlanItem[];
  /** Whether applying would change anything. */
  changes: boolean;
  digest: string;
}

export interface PlanInput {
  source: string;
  documents: ApplyDoc[];
  prune: boolean;
  max_delete?: number;
  world: ApplyWorld;
  /** The secret param names of a plan (masked in the diff). */
  secrets: (plan: string) => readonly string[];
}

/** Key-order-free JSON: `{a, b}` and `{b, a}` are the same document. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

function docName(d: ApplyDoc): string {
  return d.kind === 'stack' ? d.spec.name : d.deployment.name;
}

/** Documents naming the same object twice (a stack, a deployment, or a unit's deployment name). */
export function duplicateNames(documents: ApplyDoc[]): string[] {
  const seen = new Map<string, number>();
  const dup: string[] = [];
  const note = (name: string, i: number) => {
    const other = seen.get(name);
    if (other !== undefined && other !== i) dup.push(`${name} (documents[${other}] and documents[${i}])`);
    else seen.set(name, i);
  };
  documents.forEach((d, i) => {
    note(docName(d), i);
    if (d.kind === 'stack') for (const u of expandSpec(d.spec)) note(u.name, i);
  });
  return dup;
}

/** The field-level diff of two values, paths like `units[0].params.size`; secret params masked. */
export function diffFields(
  from: unknown,
  to: unknown,
  path = '',
  secret: (path: string) => boolean = () => false,
): FieldChange[] {
  if (same(from, to)) return [];
  const mask = (p: string, v: unknown) => (v !== undefined && secret(p) ? SECRET_MASK : v);
  const isObj = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  // A new or removed object is listed field by field too, so a secret inside it is masked.
  if ((isObj(from) || from === undefined) && (isObj(to) || to === undefined)) {
    const a = from ?? {};
    const b = to ?? {};
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diffFields(a[k], b[k], path ? `${path}.${k}` : k, secret));
  }
  // Arrays element by element (a unit added or removed is listed field by field, secrets masked).
  if ((Array.isArray(from) || from === undefined) && (Array.isArray(to) || to === undefined)) {
    const a = from ?? [];
    const b = to ?? [];
    return Array.from({ length: Math.max(a.length, b.length) }, (_, i) =>
      diffFields(a[i], b[i], `${path}[${i}]`, secret),
    ).flat();
  }
  const c: FieldChange = { path };
  if (from !== undefined) c.from = mask(path, from);
  if (to !== undefined) c.to = mask(path, to);
  return [c];
}

function withSource(labels: Record<string, string>, source: string): Record<string, string> {
  return { ...labels, [SOURCE_LABEL]: source };
}

/** A deployment needs a deploy when it is not ready or its params are not those it last deployed. */
function needsDeploy(cur: CurrentDeployment, params: Record<string, unknown>): boolean {
  return cur.state !== 'ready' || !same(cur.deployed_params ?? {}, params);
}

function refuseForeign(kind: string, name: string, labels: Record<string, string>, source: string): void {
  const owner = labels[SOURCE_LABEL];
  if (owner !== undefined && owner !== source)
    throw new LifelineError(
      'VALIDATION',
      `source: ${kind} ${name} was applied by source ${owner}, not ${source}; apply it with --source ${owner} or pick another name`,
      [{ field: 'source', reason: `${kind} ${name} belongs to source ${owner}` }],
    );
}

function planStack(doc: StackSpec, cur: CurrentStack | undefined, input: PlanInput): PlanItem {
  const secretPath = (p: string) => {
    const m = /^units\[(\d+)\]\.params\.([^.[]+)/.exec(p);
    if (!m) return false;
    const unit = doc.units[Number(m[1])] ?? cur?.spec.units[Number(m[1])];
    return unit ? input.secrets(unit.plan).includes(m[2]) : false;
  };
  const want = { spec: doc, labels: withSource(doc.labels, input.source) };
  const expanded = expandSpec(doc);
  if (!cur) {
    return {
      kind: 'stack',
      name: doc.name,
      action: 'create',
      changes: diffFields(undefined, want, '', (p) => secretPath(p.replace(/^spec\./, ''))),
      deploy: expanded.map((u) => u.name),
      version: null,
    };
  }
  refuseForeign('stack', doc.name, cur.labels, input.source);
  const units = new Map(cur.units.map((u) => [u.name, u]));
  const unknown = cur.units.filter((u) => u.state === 'unknown').map((u) => u.name);
  if (unknown.length > 0) {
    return {
      kind: 'stack',
      name: doc.name,
      action: 'blocked',
      changes: [],
      deploy: [],
      reason: `units in state unknown: ${unknown.join(', ')}; resolve or check them (apply never forces)`,
      version: cur.version,
    };
  }
  const changes = diffFields({ spec: cur.spec, labels: cur.labels }, want, '', (p) =>
    secretPath(p.replace(/^spec\./, '')),
  );
  const deploy = expanded
    .filter((u) => {
      const have = units.get(u.name);
      return !have || needsDeploy(have, u.params);
    })
    .map((u) => u.name);
  const action: PlanAction = changes.length > 0 ? 'update' : deploy.length > 0 ? 'deploy' : 'unchanged';
  return { kind: 'stack', name: doc.name, action, changes, deploy, version: cur.version };
}

function planDeployment(doc: DeploymentDoc, cur: CurrentDeployment | undefined, input: PlanInput): PlanItem {
  const secrets = input.secrets(doc.plan);
  const secret = (p: string) => {
    const m = /^params\.([^.[]+)/.exec(p);
    return m !== null && secrets.includes(m[1]);
  };
  const want = { plan: doc.plan, params: doc.params, labels: withSource(doc.labels, input.source) };
  if (!cur) {
    return {
      kind: 'deployment',
      name: doc.name,
      action: 'create',
      changes: diffFields(undefined, want, '', secret),
      deploy: [doc.name],
      version: null,
    };
  }
  if (cur.stack !== null)
    throw new LifelineError(
      'DEPLOYMENT_EXISTS',
      `deployment ${doc.name} is a unit of stack ${cur.stack}; declare it in that stack`,
    );
  refuseForeign('deployment', doc.name, cur.labels, input.source);
  if (cur.state === 'unknown') {
    return {
      kind: 'deployment',
      name: doc.name,
      action: 'blocked',
      changes: [],
      deploy: [],
      reason: 'state unknown; resolve or check it (apply never forces)',
      version: cur.version,
    };
  }
  const changes = diffFields({ plan: cur.plan, params: cur.params, labels: cur.labels }, want, '', secret);
  const deploy = needsDeploy(cur, doc.params) ? [doc.name] : [];
  const action: PlanAction = changes.length > 0 ? 'update' : deploy.length > 0 ? 'deploy' : 'unchanged';
  return { kind: 'deployment', name: doc.name, action, changes, deploy, version: cur.version };
}

/** What prune does to an object of this source the file no longer names. */
function planPrune(
  kind: 'stack' | 'deployment',
  name: string,
  version: number,
  states: DeploymentState[],
): PlanItem {
  const base = { kind, name, changes: [], deploy: [], version };
  if (states.includes('unknown'))
    return { ...base, action: 'blocked', reason: 'state unknown; prune never forces' };
  if (states.some((s) => s === 'deploying' || s === 'tearing_down'))
    return { ...base, action: 'blocked', reason: 'an attempt is running; prune waits for it' };
  // Torn down first; the delete follows on an apply once nothing stands.
  const standing = states.some((s) => s !== 'pending' && s !== 'torn_down');
  return { ...base, action: standing ? 'teardown' : 'delete' };
}

/** The versions read, absence included, in a fixed order: what the digest binds. */
function readVersions(input: PlanInput): string[] {
  const out = new Map<string, number | null>();
  const stacks = new Map(input.world.stacks.map((s) => [s.name, s]));
  const deps = new Map(input.world.deployments.map((d) => [d.name, d]));
  for (const s of input.world.stacks) {
    out.set(`stack/${s.name}`, s.version);
    for (const u of s.units) out.set(`deployment/${u.name}`, u.version);
  }
  for (const d of input.world.deployments) out.set(`deployment/${d.name}`, d.version);
  for (const d of input.documents) {
    if (d.kind === 'stack') {
      if (!out.has(`stack/${d.spec.name}`))
        out.set(`stack/${d.spec.name}`, stacks.get(d.spec.name)?.version ?? null);
      for (const u of expandSpec(d.spec))
        if (!out.has(`deployment/${u.name}`))
          out.set(`deployment/${u.name}`, deps.get(u.name)?.version ?? null);
    } else if (!out.has(`deployment/${d.deployment.name}`)) out.set(`deployment/${d.deployment.name}`, null);
  }
  return [...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}@${v}`);
}

export function planDigest(input: PlanInput): string {
  const body = canonical({
    source: input.source,
    prune: input.prune,
    max_delete: input.max_delete ?? MAX_DELETE_DEFAULT,
    documents: input.documents,
    read: readVersions(input),
  });
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** The plan; throws VALIDATION (duplicates, empty prune, another source's object) or PRUNE_LIMIT. */
export function computePlan(input: PlanInput): ApplyPlan {
  const dup = duplicateNames(input.documents);
  if (dup.length > 0)
    throw new LifelineError(
      'VALIDATION',
      `documents name the same object twice: ${dup.join(', ')}`,
      dup.map((d) => ({ field: 'documents', reason: `names ${d} twice` })),
    );
  if (input.prune && input.documents.length === 0)
    throw new LifelineError(
      'VALIDATION',
      'prune refuses a file that declares nothing (it would delete everything this source applied)',
      [{ field: 'documents', reason: 'is empty and prune is set' }],
    );
  const maxDelete = input.max_delete ?? MAX_DELETE_DEFAULT;
  const stacks = new Map(input.world.stacks.map((s) => [s.name, s]));
  const deps = new Map(input.world.deployments.map((d) => [d.name, d]));
  for (const s of input.world.stacks) for (const u of s.units) if (!deps.has(u.name)) deps.set(u.name, u);
  const items: PlanItem[] = input.documents.map((d) =>
    d.kind === 'stack'
      ? planStack(d.spec, stacks.get(d.spec.name), input)
      : planDeployment(d.deployment, deps.get(d.deployment.name), input),
  );
  if (input.prune) {
    const named = new Set(input.documents.map((d) => `${d.kind}/${docName(d)}`));
    const pruned: PlanItem[] = [];
    for (const s of input.world.stacks)
      if (s.labels[SOURCE_LABEL] === input.source && !named.has(`stack/${s.name}`))
        pruned.push(
          planPrune(
            'stack',
            s.name,
            s.version,
            s.units.map((u) => u.state),
          ),
        );
    for (const d of input.world.deployments)
      if (d.stack === null && d.labels[SOURCE_LABEL] === input.source && !named.has(`deployment/${d.name}`))
        pruned.push(planPrune('deployment', d.name, d.version, [d.state]));
    const removing = pruned.filter((p) => p.action === 'teardown' || p.action === 'delete');
    if (removing.length > maxDelete)
      throw new LifelineError(
        'PRUNE_LIMIT',
        `prune would remove ${removing.length} objects (${removing.map((p) => p.name).join(', ')}), more than max_delete ${maxDelete}`,
      );
    items.push(...pruned.sort((a, b) => (a.name < b.name ? -1 : 1)));
  }
  return {
    source: input.source,
    prune: input.prune,
    items,
    changes: items.some((i) => i.action !== 'unchanged' && i.action !== 'blocked'),
    digest: planDigest(input),
  };
}

/** What an apply did: the plan it carried out, and what it started after the spec writes. */
export interface ApplyResult {
  plan: ApplyPlan;
  started: {
    kind: 'stack' | 'deployment';
    name: string;
    action: PlanAction;
    run_id?: string;
    attempt_id?: string;
  }[];
}
