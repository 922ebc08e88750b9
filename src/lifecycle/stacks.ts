// Reads of stacks (SPEC §12.5) and the stack as the API serves it: units in dependency order with their
// state, current attempt and outputs; the spec's secret params masked.
import type { Kysely } from 'kysely';
import { findPlan } from '../config/load.ts';
import { LifelineError } from '../domain/errors.ts';
import { unitDepths, type StackSpec } from '../domain/stack-spec.ts';
import type { StackState } from '../domain/stack-state.ts';
import type { Stack, StackUnit } from '../domain/stack-types.ts';
import type { Page } from '../domain/types.ts';
import { maskParams } from '../runner/redact.ts';
import { parseOutputs } from '../domain/outputs.ts';
import { maskOutputs } from './present.ts';
import { driftOfRow, toSummary } from '../store/rows.ts';
import type { Database, StacksTable } from '../store/schema.ts';
import {
  selectRunSummaries,
  selectStackById,
  selectStackByRef,
  selectStackPage,
  selectUnitViews,
  type UnitView,
} from '../store/stacks.ts';
import { secretNames, type Ctx } from './context.ts';
import { checkLimit, MAX_PAGE, validation } from './validate.ts';

/** A live stack by id or name, or NOT_FOUND. */
export async function stackByRef(db: Kysely<Database>, ref: string): Promise<StacksTable> {
  const row = await selectStackByRef(db, ref);
  if (!row) throw new LifelineError('NOT_FOUND', `stack ${ref} not found`);
  return row;
}

/** A stack filter (events) as an id; deleted stacks stay addressable by id. */
export async function stackIdFor(ctx: Ctx, ref: string): Promise<string> {
  const live = await selectStackByRef(ctx.store.db, ref);
  if (live) return live.id;
  const gone = await selectStackById(ctx.store.db, ref);
  if (gone) return gone.id;
  throw new LifelineError('NOT_FOUND', `stack ${ref} not found`);
}

/** A unit's outputs (SPEC §12.1), masked as the deployment's own view masks them. */
function outputsOf(ctx: Ctx, row: UnitView): Record<string, unknown> {
  const outputs = parseOutputs(row.outputs);
  // Most units of a big stack have none: no params to parse for them.
  if (Object.keys(outputs).length === 0) return outputs;
  const params = JSON.parse(row.params) as Record<string, unknown>;
  return maskOutputs(ctx, row.plan, params, row.secret_params, outputs);
}

function maskSpec(ctx: Ctx, spec: StackSpec): Stack['spec'] {
  return {
    ...spec,
    units: spec.units.map((u) => ({
      ...u,
      params: maskParams(u.params, secretNames(findPlan(ctx.config, u.plan), null)),
    })),
  };
}

export async function presentStacks(ctx: Ctx, db: Kysely<Database>, rows: StacksTable[]): Promise<Stack[]> {
  const runs = new Map(
    (
      await selectRunSummaries(
        db,
        rows.map((r) => r.active_run_id).filter((x): x is string => x !== null),
      )
    ).map((r) => [r.id, r]),
  );
  const out: Stack[] = [];
  for (const row of rows) {
    const spec = JSON.parse(row.spec) as StackSpec;
    const units = await selectUnitViews(db, row.id);
    const depth = unitDepths(spec);
    const order = new Map(spec.units.map((u, i) => [u.key, i]));
    const after = new Map(spec.units.map((u) => [u.key, u.after]));
    const items: StackUnit[] = units.map((u) => {
      const key = u.unit_key ?? '';
      return {
        key,
        index: u.unit_index == null ? null : Number(u.unit_index),
        deployment: u.name,
        deployment_id: u.id,
        state: u.state as StackUnit['state'],
        current_attempt:
          u.attempt_id === null
            ? null
            : toSummary({
                id: u.attempt_id,
                number: Number(u.attempt_number),
                kind: u.attempt_kind!,
                state: u.attempt_state!,
              }),
        outputs: outputsOf(ctx, u),
        drift: driftOfRow(u),
        depth: depth.get(key) ?? 0,
        after: after.get(key) ?? [],
      };
    });
    items.sort(
      (a, b) =>
        a.depth - b.depth ||
        (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0) ||
        (a.index ?? 0) - (b.index ?? 0),
    );
    const run = row.active_run_id ? runs.get(row.active_run_id) : undefined;
    out.push({
      id: row.id,
      name: row.name,
      spec: maskSpec(ctx, spec),
      labels: JSON.parse(row.labels) as Record<string, string>,
      state: row.state as StackState,
      version: Number(row.version),
      units: items,
      active_run: run ? { id: run.id, kind: run.kind, state: run.state } : null,
      created_at: row.created_at,
      updated_at: row.updated_at,
    });
  }
  return out;
}

export async function getStack(ctx: Ctx, ref: string): Promise<Stack> {
  const row = await stackByRef(ctx.store.db, ref);
  return (await presentStacks(ctx, ctx.store.db, [row]))[0];
}

export async function listStacks(ctx: Ctx, query: { limit?: number; cursor?: string }): Promise<Page<Stack>> {
  const limit = checkLimit(query.limit, MAX_PAGE, 50);
  if (query.cursor !== undefined && !/^stk_[0-9A-Z]{26}$/.test(query.cursor))
    throw validation('cursor', 'is not a cursor');
  const rows = await selectStackPage(ctx.store.db, { limit: limit + 1, before: query.cursor });
  const page = rows.slice(0, limit);
  return {
    items: await presentStacks(ctx, ctx.store.db, page),
    next_cursor: rows.length > limit ? page[page.length - 1].id : null,
  };
}
