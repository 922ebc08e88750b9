// Stack writes (SPEC §12.2, §12.5): create (the stack and every unit deployment in one transaction),
// update with If-Match (units added pending, removed ones deleted), delete (the stack and its units).
import type { Transaction } from 'kysely';
import { findPlan } from '../../config/load.ts';
import type { PlanConfig } from '../../config/types.ts';
import { LifelineError, type FieldError } from '../../domain/errors.ts';
import { expandSpec, parseStackSpec, type ExpandedUnit, type StackSpec } from '../../domain/stack-spec.ts';
import { decideStackDelete, decideStackUpdate, stackStateOf } from '../../domain/stack-state.ts';
import type { Stack } from '../../domain/stack-types.ts';
import { decideCreate } from '../../domain/transitions.ts';
import type { Actor, DeploymentState, LifelineEvent, NewEvent } from '../../domain/types.ts';
import { maskParams } from '../../runner/redact.ts';
import { isNameTaken, markDeploymentDeleted, replaceLabels } from '../../store/deployments.ts';
import { insertEvents } from '../../store/events.ts';
import type { Database, DeploymentsTable, StacksTable } from '../../store/schema.ts';
import {
  insertStack,
  insertUnitDeployments,
  isStackNameTaken,
  markStackDeleted,
  selectStackByRef,
  selectTakenNames,
  selectUnitRows,
  stackStateEvents,
  stackTransitionEvent,
  updateStackSpec,
} from '../../store/stacks.ts';
import { deploymentTransitionEvent, LostRace } from '../../store/transition.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { newDeploymentId, newStackId, nowIso } from '../ids.ts';
import { presentStacks, stackByRef } from '../stacks.ts';
import { transactCommand } from '../tx.ts';
import { callerOf } from './guards.ts';

function refused(
  d: { ok: true } | { ok: false; refusal: { code: LifelineError['code']; detail: string } },
): void {
  if (!d.ok) throw new LifelineError(d.refusal.code, d.refusal.detail);
}

/** The spec checked in full (shape, graph, names, plans, params): every problem a 422 naming its field. */
export function checkStackSpec(
  ctx: Ctx,
  input: unknown,
): { spec: StackSpec; plans: Map<string, PlanConfig> } {
  const parsed = parseStackSpec(input);
  if (!parsed.ok) throw invalid(parsed.errors);
  const errors: FieldError[] = [];
  const plans = new Map<string, PlanConfig>();
  parsed.spec.units.forEach((u, i) => {
    const plan = findPlan(ctx.config, u.plan);
    if (!plan) {
      errors.push({ field: `units[${i}].plan`, reason: `plan ${u.plan} is not configured` });
      return;
    }
    plans.set(u.plan, plan);
    for (const e of plan.validateParams(u.params)) {
      // The plan names its fields from `params` (e.g. `params.replicas`).
      const field = e.field.startsWith('params') ? e.field : `params.${e.field}`;
      errors.push({ field: `units[${i}].${field}`, reason: e.reason });
    }
  });
  if (errors.length > 0) throw invalid(errors);
  return { spec: parsed.spec, plans };
}

function invalid(errors: FieldError[]): LifelineError {
  const first = errors[0];
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return new LifelineError('VALIDATION', `${first.field || 'spec'}: ${first.reason}${more}`, errors);
}

/** A unit deployment row (pending) and its created events, stack_id set. */
function unitRow(
  stackId: string,
  u: ExpandedUnit,
  plan: PlanConfig,
  at: string,
  actor: string,
): { row: DeploymentsTable; events: NewEvent[] } {
  const change = decideCreate();
  if (!change.ok || !change.writes.deployment) throw new Error('decideCreate refused');
  const row: DeploymentsTable = {
    id: newDeploymentId(),
    name: u.name,
    plan: plan.name,
    params: JSON.stringify(u.params),
    secret_params: JSON.stringify(plan.secretParams),
    labels: JSON.stringify(u.labels),
    state: change.writes.deployment.to,
    version: 1,
    state_changed_at: at,
    current_attempt_id: null,
    created_at: at,
    updated_at: at,
    deleted_at: null,
    stack_id: stackId,
    unit_key: u.key,
    unit_index: u.index,
  };
  const created: NewEvent = {
    type: 'deployment_created',
    deployment_id: row.id,
    attempt_id: null,
    stack_id: stackId,
    data: {
      name: row.name,
      plan: plan.name,
      params: maskParams(u.params, plan.secretParams),
      labels: u.labels,
    },
  };
  const transition = {
    ...deploymentTransitionEvent(row.id, null, change.writes.deployment, actor, 1),
    stack_id: stackId,
  };
  return { row, events: [created, transition] };
}

/** Refuses names held by live deployments, naming them (nothing is written). */
async function refuseTaken(trx: Transaction<Database>, names: string[]): Promise<void> {
  const taken = await selectTakenNames(trx, names);
  if (taken.length > 0) {
    throw new LifelineError(
      'DEPLOYMENT_EXISTS',
      `deployment name${taken.length > 1 ? 's' : ''} already taken: ${taken.join(', ')}`,
    );
  }
}

export async function createStack(ctx: Ctx, input: unknown, actor: Actor, w?: WriteOptions): Promise<Stack> {
  const { spec, plans } = checkStackSpec(ctx, input);
  const race = { lostName: false };
  return transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const { row, events } = await createStackIn(trx, spec, plans, actor, spec.labels, race);
    return { result: (await presentStacks(ctx, trx, [row]))[0], events };
  });
}

/**
 * The writes of a stack create inside the caller's transaction (create, and apply's one transaction);
 * `labels` are the stack's as stored (apply adds lifeline.source).
 */
export async function createStackIn(
  trx: Transaction<Database>,
  spec: StackSpec,
  plans: Map<string, PlanConfig>,
  actor: Actor,
  labels: Record<string, string>,
  race: { lostName: boolean },
): Promise<{ row: StacksTable; events: LifelineEvent[] }> {
  const expanded = expandSpec(spec);
  {
    // Ids are made inside the unit: a re-run after a lost race never reuses one (store/events.ts caches
    // a deployment's stack by id).
    const at = nowIso();
    const id = newStackId();
    if (await selectStackByRef(trx, spec.name)) {
      throw new LifelineError('STACK_EXISTS', `stack ${spec.name} already exists`);
    }
    await refuseTaken(
      trx,
      expanded.map((u) => u.name),
    );
    const units = expanded.map((u) => unitRow(id, u, plans.get(u.plan)!, at, actor.name));
    const state = stackStateOf(
      null,
      units.map((u) => u.row.state as DeploymentState),
    );
    const row: StacksTable = {
      id,
      name: spec.name,
      spec: JSON.stringify(spec),
      labels: JSON.stringify(labels),
      state,
      version: 1,
      active_run_id: null,
      created_at: at,
      updated_at: at,
      deleted_at: null,
    };
    try {
      await insertStack(trx, row);
      await insertUnitDeployments(
        trx,
        units.map((u) => u.row),
      );
    } catch (err) {
      const stackTaken = isStackNameTaken(err);
      if (!stackTaken && !isNameTaken(err)) throw err;
      // A concurrent create won a name: re-run once, which refuses it by name (or replays a keyed twin).
      if (!race.lostName) {
        race.lostName = true;
        throw new LostRace(`name ${spec.name}`);
      }
      if (stackTaken) throw new LifelineError('STACK_EXISTS', `stack ${spec.name} already exists`);
      throw new LifelineError('DEPLOYMENT_EXISTS', 'a unit deployment name was taken concurrently');
    }
    const events: NewEvent[] = units.flatMap((u) => u.events);
    events.push(
      stackTransitionEvent(id, spec.name, null, state, { at, actor: actor.name, trigger: 'created' }, 1),
    );
    return { row, events: await insertEvents(trx, events, at) };
  }
}

/** Checks If-Match against the stack's version. */
function checkStackVersion(row: StacksTable, w?: WriteOptions): void {
  if (w?.ifVersion !== undefined && Number(row.version) !== w.ifVersion) {
    throw new LifelineError('VERSION_MISMATCH', `stack is at version ${row.version}, not ${w.ifVersion}`);
  }
}

function deletedEvent(dep: DeploymentsTable, actor: string): NewEvent {
  return {
    type: 'deployment_deleted',
    deployment_id: dep.id,
    attempt_id: null,
    stack_id: dep.stack_id ?? null,
    data: { name: dep.name, actor },
  };
}

async function deleteUnit(trx: Transaction<Database>, dep: DeploymentsTable, at: string): Promise<void> {
  if (!(await markDeploymentDeleted(trx, dep.id, Number(dep.version), at)))
    throw new LostRace(`deployment ${dep.id}`);
}

/**
 * PUT: replaces the spec. New units are created pending; kept units take the new params at their next
 * deploy; removed units must be pending or torn_down and are deleted. A unit's plan cannot change
 * (remove the unit and add it back). Refused while a run is active.
 */
export async function updateStack(
  ctx: Ctx,
  name: string,
  input: unknown,
  actor: Actor,
  w?: WriteOptions,
): Promise<Stack> {
  const { spec, plans } = checkStackSpec(ctx, input);
  if (spec.name !== name) {
    throw invalid([{ field: 'name', reason: `must be the stack's name ${name}; a stack cannot be renamed` }]);
  }
  return transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const stack = await stackByRef(trx, name);
    checkStackVersion(stack, w);
    const events = await updateStackIn(trx, stack, spec, plans, actor, {
      ...spec.labels,
      ...lifelineLabels(stack),
    });
    const fresh = (await trx.selectFrom('stacks').selectAll().where('id', '=', stack.id).executeTakeFirst())!;
    return { result: (await presentStacks(ctx, trx, [fresh]))[0], events };
  });
}

/**
 * The `lifeline.*` labels a stack carries (`lifeline.source` of the apply that made it). A spec cannot
 * name them, so a hand PUT keeps them: dropping the source would hide the stack from its file's prune
 * and let another source adopt it.
 */
function lifelineLabels(stack: StacksTable): Record<string, string> {
  const labels = JSON.parse(stack.labels) as Record<string, string>;
  return Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith('lifeline.')));
}

/** The writes of a stack update inside the caller's transaction; `labels` as stored. */
export async function updateStackIn(
  trx: Transaction<Database>,
  stack: StacksTable,
  spec: StackSpec,
  plans: Map<string, PlanConfig>,
  actor: Actor,
  labels: Record<string, string>,
): Promise<LifelineEvent[]> {
  const expanded = expandSpec(spec);
  {
    const at = nowIso();
    const existing = await selectUnitRows(trx, stack.id);
    const wanted = new Map(expanded.map((u) => [u.name, u]));
    const removed = existing.filter((d) => !wanted.has(d.name));
    refused(
      decideStackUpdate(
        stack.active_run_id,
        removed.map((d) => ({ name: d.name, state: d.state as DeploymentState })),
      ),
    );
    const byName = new Map(existing.map((d) => [d.name, d]));
    const planErrors: FieldError[] = [];
    spec.units.forEach((u, i) => {
      const kept = existing.find((d) => d.unit_key === u.key && wanted.has(d.name));
      if (kept && kept.plan !== u.plan)
        planErrors.push({
          field: `units[${i}].plan`,
          reason: `unit ${u.key} runs plan ${kept.plan}; remove the unit and add it back to change its plan`,
        });
    });
    if (planErrors.length > 0) throw invalid(planErrors);
    const added = expanded.filter((u) => !byName.has(u.name));
    await refuseTaken(
      trx,
      added.map((u) => u.name),
    );
    const events: NewEvent[] = [];
    for (const dep of removed) {
      await deleteUnit(trx, dep, at);
      events.push(deletedEvent(dep, actor.name));
    }
    // Changed params apply at the unit's next deploy: the deployment's params, no state change. The
    // stack's labels are every unit's now (a freeze matching them must hold the units it names).
    for (const u of expanded) {
      const dep = byName.get(u.name);
      const params = JSON.stringify(u.params);
      const unitLabels = JSON.stringify(u.labels);
      if (!dep || (dep.params === params && dep.labels === unitLabels)) continue;
      const res = await trx
        .updateTable('deployments')
        .set({ params, labels: unitLabels, updated_at: at })
        .where('id', '=', dep.id)
        .where('version', '=', Number(dep.version))
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`deployment ${dep.id}`);
      if (dep.labels !== unitLabels) await replaceLabels(trx, dep.id, u.labels);
    }
    const units = added.map((u) => unitRow(stack.id, u, plans.get(u.plan)!, at, actor.name));
    if (units.length > 0) {
      await insertUnitDeployments(
        trx,
        units.map((u) => u.row),
      );
      for (const u of units) events.push(...u.events);
    }
    await updateStackSpec(
      trx,
      stack.id,
      Number(stack.version),
      { spec: JSON.stringify(spec), labels: JSON.stringify(labels) },
      at,
    );
    events.push(
      ...(await stackStateEvents(trx, stack.id, { at, actor: actor.name, trigger: 'units_changed' })),
    );
    return insertEvents(trx, events, at);
  }
}

/** DELETE: the stack and its unit deployments (history stays readable by id). */
export async function deleteStack(
  ctx: Ctx,
  name: string,
  opts: { force?: boolean },
  actor: Actor,
  w?: WriteOptions,
): Promise<void> {
  await transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const at = nowIso();
    const stack = await stackByRef(trx, name);
    checkStackVersion(stack, w);
    const units = await selectUnitRows(trx, stack.id);
    refused(
      decideStackDelete(
        stack.active_run_id,
        units.map((d) => ({ name: d.name, state: d.state as DeploymentState })),
        opts.force === true,
        callerOf(actor),
      ),
    );
    const events: NewEvent[] = [];
    for (const dep of units) {
      await deleteUnit(trx, dep, at);
      events.push(deletedEvent(dep, actor.name));
    }
    await markStackDeleted(trx, stack.id, Number(stack.version), at);
    return { result: undefined, events: await insertEvents(trx, events, at) };
  });
}
