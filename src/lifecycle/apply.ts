// Apply a file (SPEC §14.1): the documents checked, the objects they name (and those of the source) read,
// the plan; apply re-plans inside its one transaction, refuses a moved digest (PLAN_STALE), writes the
// specs, then starts the runs and attempts the plan named.
import type { Kysely, Transaction } from 'kysely';
import { findPlan } from '../config/load.ts';
import { nearest } from '../config/messages.ts';
import type { PlanConfig } from '../config/types.ts';
import {
  computePlan,
  SOURCE_LABEL,
  type ApplyDoc,
  type ApplyPlan,
  type ApplyResult,
  type ApplyWorld,
  type CurrentDeployment,
  type DeploymentDoc,
} from '../domain/apply-plan.ts';
import { LifelineError, type FieldError } from '../domain/errors.ts';
import type { StackSpec } from '../domain/stack-spec.ts';
import type { Actor, DeploymentState, LifelineEvent } from '../domain/types.ts';
import { selectLastDeployedParams } from '../store/runs.ts';
import type { Database, DeploymentsTable, StacksTable } from '../store/schema.ts';
import type { LifelineApi, WriteOptions } from './api.ts';
import { createDeploymentIn } from './commands/create.ts';
import { checkStackSpec, createStackIn, updateStackIn } from './commands/stacks.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { LostRace } from '../store/transition.ts';
import { transactCommand } from './tx.ts';
import { asParams, checkLabels, checkName, checkParams } from './validate.ts';

const SOURCE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const BODY_KEYS = ['source', 'documents', 'prune', 'max_delete', 'digest'];
const DEPLOYMENT_KEYS = ['name', 'plan', 'params', 'labels'];
const STACK_KEYS = ['name', 'on_failure', 'labels', 'units'];
const UNIT_KEYS = ['key', 'plan', 'params', 'count', 'after'];
export const DOCUMENTS_MAX = 1000;

export interface ApplyBody {
  source: string;
  documents: ApplyDoc[];
  prune: boolean;
  max_delete?: number;
  digest?: string;
}

interface Checked {
  body: ApplyBody;
  plans: Map<string, PlanConfig>;
}

function invalid(errors: FieldError[]): LifelineError {
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return new LifelineError('VALIDATION', `${errors[0].field}: ${errors[0].reason}${more}`, errors);
}

/** `hints`: further keys to suggest (a deployment document's misspelt `units` is a stack's). */
function unknownKeys(
  o: Record<string, unknown>,
  allowed: string[],
  at: string,
  errors: FieldError[],
  hints: string[] = [],
): void {
  for (const k of Object.keys(o)) {
    if (allowed.includes(k)) continue;
    const field = at ? `${at}.${k}` : k;
    if (hints.includes(k)) {
      errors.push({ field, reason: 'is a stack field, and this document has no units' });
      continue;
    }
    const near = nearest(k, [...allowed, ...hints]);
    errors.push({
      field,
      reason: near
        ? `unknown key (did you mean ${near}?)`
        : `unknown key (expected one of: ${allowed.join(', ')})`,
    });
  }
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Prefixes a thrown field error with the document it came from. */
function within(at: string, fn: () => void, errors: FieldError[]): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof LifelineError)) throw err;
    const list = err.errors ?? [{ field: '', reason: err.message }];
    for (const e of list) errors.push({ field: e.field ? `${at}.${e.field}` : at, reason: e.reason });
  }
}

/** The body checked in full: every problem a 422 naming its field (`documents[2].units[0].plann`). */
export function checkApplyBody(ctx: Ctx, input: unknown, needDigest: boolean): Checked {
  if (!isObj(input)) throw invalid([{ field: '', reason: 'the body must be an object' }]);
  const errors: FieldError[] = [];
  unknownKeys(input, needDigest ? BODY_KEYS : BODY_KEYS.filter((k) => k !== 'digest'), '', errors);
  if (typeof input.source !== 'string' || !SOURCE.test(input.source))
    errors.push({ field: 'source', reason: `must match ${SOURCE.source}` });
  if (input.prune !== undefined && typeof input.prune !== 'boolean')
    errors.push({ field: 'prune', reason: 'must be a boolean' });
  const max = input.max_delete;
  if (max !== undefined && (typeof max !== 'number' || !Number.isInteger(max) || max < 0 || max > 10_000))
    errors.push({ field: 'max_delete', reason: 'must be an integer from 0 to 10000' });
  if (needDigest && (typeof input.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(input.digest)))
    errors.push({ field: 'digest', reason: 'must be the digest of a plan (sha256:…)' });
  const docs: ApplyDoc[] = [];
  const plans = new Map<string, PlanConfig>();
  if (!Array.isArray(input.documents)) errors.push({ field: 'documents', reason: 'must be a list' });
  else if (input.documents.length > DOCUMENTS_MAX)
    errors.push({ field: 'documents', reason: `at most ${DOCUMENTS_MAX} documents` });
  else
    input.documents.forEach((d, i) => {
      const at = `documents[${i}]`;
      if (!isObj(d)) return void errors.push({ field: at, reason: 'must be an object' });
      if (d.units !== undefined) {
        const before = errors.length;
        unknownKeys(d, STACK_KEYS, at, errors);
        if (Array.isArray(d.units))
          d.units.forEach((u, j) => isObj(u) && unknownKeys(u, UNIT_KEYS, `${at}.units[${j}]`, errors));
        if (errors.length > before) return;
        within(
          at,
          () => {
            const { spec, plans: used } = checkStackSpec(ctx, d);
            for (const [k, p] of used) plans.set(k, p);
            docs.push({ kind: 'stack', spec });
          },
          errors,
        );
        return;
      }
      const before = errors.length;
      unknownKeys(
        d,
        DEPLOYMENT_KEYS,
        at,
        errors,
        STACK_KEYS.filter((k) => !DEPLOYMENT_KEYS.includes(k)),
      );
      if (errors.length > before) return;
      within(
        at,
        () => {
          const name = checkName(d.name);
          const plan = typeof d.plan === 'string' ? findPlan(ctx.config, d.plan) : undefined;
          if (!plan) throw invalid([{ field: 'plan', reason: `plan ${String(d.plan)} is not configured` }]);
          const params = asParams(d.params ?? {}, 'params');
          checkParams(plan, params);
          const labels = checkLabels(d.labels ?? {});
          const bad = Object.keys(labels).find((k) => k.startsWith('lifeline.'));
          if (bad)
            throw invalid([{ field: `labels.${bad}`, reason: 'lifeline.* labels are set by Lifeline' }]);
          plans.set(plan.name, plan);
          docs.push({ kind: 'deployment', deployment: { name, plan: plan.name, params, labels } });
        },
        errors,
      );
    });
  if (errors.length > 0) throw invalid(errors);
  return {
    body: {
      source: input.source as string,
      documents: docs,
      prune: input.prune === true,
      max_delete: max as number | undefined,
      digest: input.digest as string | undefined,
    },
    plans,
  };
}

const parse = <T>(s: string): T => JSON.parse(s) as T;

/** What the plan reads of a deployment: a stack of 2,000 units is read whole, so no more than this. */
type ReadDeployment = Pick<
  DeploymentsTable,
  'id' | 'name' | 'plan' | 'params' | 'labels' | 'state' | 'version' | 'stack_id'
>;
const READ_COLUMNS = ['id', 'name', 'plan', 'params', 'labels', 'state', 'version', 'stack_id'] as const;

function current(
  row: ReadDeployment,
  deployed: Map<string, string>,
  stack: string | null,
): CurrentDeployment {
  const last = deployed.get(row.id);
  return {
    name: row.name,
    plan: row.plan,
    params: parse(row.params),
    labels: parse(row.labels),
    state: row.state as DeploymentState,
    version: Number(row.version),
    deployed_params: last === undefined ? null : parse(last),
    stack,
  };
}

/** The objects the documents name and those labelled with the source: what the plan reads. */
async function readWorld(
  db: Kysely<Database>,
  body: ApplyBody,
): Promise<{ world: ApplyWorld; stacks: Map<string, StacksTable>; deps: Map<string, ReadDeployment> }> {
  const stackNames = body.documents.flatMap((d) => (d.kind === 'stack' ? [d.spec.name] : []));
  const depNames = body.documents.flatMap((d) => (d.kind === 'deployment' ? [d.deployment.name] : []));
  // The label is inside a JSON column: LIKE narrows, the exact match is checked below.
  const tagged = `%${JSON.stringify(SOURCE_LABEL)}:${JSON.stringify(body.source)}%`;
  const stackRows = await db
    .selectFrom('stacks')
    .selectAll()
    .where('deleted_at', 'is', null)
    .where((eb) =>
      eb.or([...(stackNames.length > 0 ? [eb('name', 'in', stackNames)] : []), eb('labels', 'like', tagged)]),
    )
    .execute();
  const stacks = new Map(stackRows.map((s) => [s.name, s]));
  const unitRows =
    stackRows.length > 0
      ? await db
          .selectFrom('deployments')
          .select(READ_COLUMNS)
          .where('deleted_at', 'is', null)
          .where(
            'stack_id',
            'in',
            stackRows.map((s) => s.id),
          )
          .execute()
      : [];
  const depRows = await db
    .selectFrom('deployments')
    .select(READ_COLUMNS)
    .where('deleted_at', 'is', null)
    .where((eb) =>
      eb.or([...(depNames.length > 0 ? [eb('name', 'in', depNames)] : []), eb('labels', 'like', tagged)]),
    )
    .execute();
  const all = [...unitRows, ...depRows];
  const deployed = await selectLastDeployedParams(
    db,
    all.map((d) => d.id),
  );
  const stackById = new Map(stackRows.map((s) => [s.id, s.name]));
  // Each stack's units in one pass (200 stacks × 2,000 units filtered per stack was quadratic).
  const unitsOf = new Map<string, ReadDeployment[]>();
  for (const u of unitRows) {
    const list = unitsOf.get(u.stack_id!);
    if (list) list.push(u);
    else unitsOf.set(u.stack_id!, [u]);
  }
  const world: ApplyWorld = {
    stacks: stackRows.map((s) => ({
      name: s.name,
      spec: parse<StackSpec>(s.spec),
      labels: parse(s.labels),
      version: Number(s.version),
      units: (unitsOf.get(s.id) ?? []).map((u) => current(u, deployed, s.name)),
    })),
    deployments: depRows
      .filter((d) => !d.stack_id || !stackById.has(d.stack_id))
      .map((d) => current(d, deployed, d.stack_id ? 'another stack' : null)),
  };
  return { world, stacks, deps: new Map(all.map((d) => [d.name, d])) };
}

function secretsOf(ctx: Ctx) {
  return (plan: string) => findPlan(ctx.config, plan)?.secretParams ?? [];
}

function planOf(ctx: Ctx, body: ApplyBody, world: ApplyWorld): ApplyPlan {
  return computePlan({ ...body, world, secrets: secretsOf(ctx) });
}

export async function planApply(ctx: Ctx, input: unknown): Promise<ApplyPlan> {
  const { body } = checkApplyBody(ctx, input, false);
  const { world } = await readWorld(ctx.store.db, body);
  return planOf(ctx, body, world);
}

/** The spec writes of a plan inside one transaction; the source label on every object written. */
async function writeSpecs(
  trx: Transaction<Database>,
  checked: Checked,
  plan: ApplyPlan,
  read: Awaited<ReturnType<typeof readWorld>>,
  actor: Actor,
): Promise<LifelineEvent[]> {
  const { body, plans } = checked;
  const events: LifelineEvent[] = [];
  const at = nowIso();
  for (const [i, d] of body.documents.entries()) {
    const item = plan.items[i];
    if (item.action !== 'create' && item.action !== 'update') continue;
    if (d.kind === 'stack') {
      const labels = { ...d.spec.labels, [SOURCE_LABEL]: body.source };
      if (item.action === 'create')
        events.push(...(await createStackIn(trx, d.spec, plans, actor, labels, { lostName: true })).events);
      else
        events.push(
          ...(await updateStackIn(trx, read.stacks.get(d.spec.name)!, d.spec, plans, actor, labels)),
        );
      continue;
    }
    const x: DeploymentDoc = d.deployment;
    const labels = { ...x.labels, [SOURCE_LABEL]: body.source };
    if (item.action === 'create') {
      const plan = plans.get(x.plan)!;
      events.push(
        ...(await createDeploymentIn(trx, { name: x.name, plan, params: x.params, labels }, actor)).events,
      );
      continue;
    }
    const row = read.deps.get(x.name)!;
    if (row.plan !== x.plan)
      throw invalid([
        {
          field: `documents[${i}].plan`,
          reason: `deployment ${x.name} runs plan ${row.plan}; delete it and apply again to change its plan`,
        },
      ]);
    const res = await trx
      .updateTable('deployments')
      .set({ params: JSON.stringify(x.params), labels: JSON.stringify(labels), updated_at: at })
      .where('id', '=', row.id)
      .where('version', '=', Number(row.version))
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`deployment ${row.id}`);
  }
  return events;
}

type Starter = Pick<
  LifelineApi,
  'startStackRun' | 'startDeploy' | 'teardown' | 'deleteDeployment' | 'deleteStack'
>;

export async function applyFile(
  ctx: Ctx,
  api: Starter,
  input: unknown,
  actor: Actor,
  w?: WriteOptions,
): Promise<ApplyResult> {
  // Only the request id: an apply takes no If-Match or Idempotency-Key of its own.
  const t: WriteOptions | undefined = w?.traceId ? { traceId: w.traceId } : undefined;
  const checked = checkApplyBody(ctx, input, true);
  const { body } = checked;
  const plan = await transactCommand(ctx.store, ctx.bus, t, async (trx) => {
    const read = await readWorld(trx, body);
    const fresh = planOf(ctx, body, read.world);
    if (fresh.digest !== body.digest)
      throw new LifelineError(
        'PLAN_STALE',
        'something changed since the plan was made (or the documents differ); plan again and review it',
      );
    return { result: fresh, events: await writeSpecs(trx, checked, fresh, read, actor) };
  });
  const started: ApplyResult['started'] = [];
  for (const item of plan.items) {
    const base = { kind: item.kind, name: item.name, action: item.action };
    if (item.kind === 'stack') {
      if (item.deploy.length > 0) {
        const run = await api.startStackRun(item.name, 'deploy', {}, actor, t);
        started.push({ ...base, action: 'deploy', run_id: run.id });
      } else if (item.action === 'teardown') {
        const run = await api.startStackRun(item.name, 'teardown', { confirm: item.name }, actor, t);
        started.push({ ...base, run_id: run.id });
      } else if (item.action === 'delete') {
        await api.deleteStack(item.name, {}, actor, t);
        started.push(base);
      }
    } else if (item.deploy.length > 0) {
      const a = await api.startDeploy(item.name, {}, actor, t);
      started.push({ ...base, action: 'deploy', attempt_id: a.id });
    } else if (item.action === 'teardown') {
      const a = await api.teardown(item.name, { confirm: item.name }, actor, t);
      started.push({ ...base, attempt_id: a.id });
    } else if (item.action === 'delete') {
      await api.deleteDeployment(item.name, {}, actor, t);
      started.push(base);
    }
  }
  return { plan, started };
}
