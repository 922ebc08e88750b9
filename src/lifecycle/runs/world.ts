// What a run decides on, read inside the deciding transaction: the run, its stack's spec and units
// (with what each comes after, as deployment ids), and the states of the attempts it launched.
import type { Transaction } from 'kysely';
import { LifelineError } from '../../domain/errors.ts';
import type { StackSpec } from '../../domain/stack-spec.ts';
import { orderedKeys } from '../../domain/stack-spec.ts';
import {
  decideAdvance,
  type Advance,
  type OnFailure,
  type RunKind,
  type RunOptions,
  type RunState,
  type RunStep,
  type RunUnit,
  type RunView,
  type UnitNow,
} from '../../domain/stack-run.ts';
import type { AttemptState, DeploymentState } from '../../domain/types.ts';
import { selectRunById } from '../../store/runs.ts';
import type { Database, DeploymentsTable, RunsTable, StacksTable } from '../../store/schema.ts';
import { selectStackById, selectUnitRows } from '../../store/stacks.ts';

/** What a run stores in `options`: the request's, and the stack's on_failure when it began. */
export interface StoredRunOptions extends RunOptions {
  on_failure: OnFailure;
}

export function runOptions(row: RunsTable): StoredRunOptions {
  return JSON.parse(row.options) as StoredRunOptions;
}

/** A stack's units in dependency order (depth, spec order, index), each with what it comes after. */
export function unitsInOrder(
  spec: StackSpec,
  rows: DeploymentsTable[],
): { row: DeploymentsTable; after: string[] }[] {
  const byKey = new Map<string, DeploymentsTable[]>();
  for (const r of rows) {
    const list = byKey.get(r.unit_key ?? '') ?? [];
    list.push(r);
    byKey.set(r.unit_key ?? '', list);
  }
  const afterKeys = new Map(spec.units.map((u) => [u.key, u.after] as const));
  const out: { row: DeploymentsTable; after: string[] }[] = [];
  for (const key of orderedKeys(spec)) {
    const list = (byKey.get(key) ?? []).sort((a, b) => Number(a.unit_index ?? 0) - Number(b.unit_index ?? 0));
    const after = (afterKeys.get(key) ?? []).flatMap((k) => (byKey.get(k) ?? []).map((r) => r.id));
    for (const row of list) out.push({ row, after });
  }
  return out;
}

export function runUnits(spec: StackSpec, rows: DeploymentsTable[], changed: Set<string>): RunUnit[] {
  return unitsInOrder(spec, rows).map(({ row, after }) => ({
    key: row.unit_key!,
    index: row.unit_index === null || row.unit_index === undefined ? null : Number(row.unit_index),
    deploymentId: row.id,
    state: row.state as DeploymentState,
    paramsChanged: changed.has(row.id),
    after,
  }));
}

export interface RunWorld {
  run: RunsTable;
  stack: StacksTable;
  rows: Map<string, DeploymentsTable>;
  view: RunView;
  advance: Advance;
}

/** Reads the run and everything it depends on, and asks the planner what moves now. */
export async function readRunWorld(trx: Transaction<Database>, runId: string): Promise<RunWorld> {
  const run = await selectRunById(trx, runId);
  if (!run) throw new LifelineError('NOT_FOUND', `no run ${runId}`);
  const stack = await selectStackById(trx, run.stack_id);
  if (!stack) throw new LifelineError('NOT_FOUND', `the stack of run ${runId} is gone`);
  const spec = JSON.parse(stack.spec) as StackSpec;
  const steps = JSON.parse(run.steps) as RunStep[];
  // Attempts before units: on Postgres each statement sees what had committed when it began, so the
  // units are at least as new as their attempts (an attempt's end and its unit's move commit together).
  const attemptIds = steps.flatMap((s) => (s.attempt_id ? [s.attempt_id] : []));
  const attempts = new Map<string, AttemptState>();
  if (attemptIds.length > 0) {
    const found = await trx
      .selectFrom('attempts')
      .select(['id', 'state'])
      .where('id', 'in', attemptIds)
      .execute();
    for (const a of found) attempts.set(a.id, a.state as AttemptState);
  }
  const unitRows = await selectUnitRows(trx, stack.id);
  const rows = new Map(unitRows.map((r) => [r.id, r] as const));
  const after = new Map(unitsInOrder(spec, unitRows).map((u) => [u.row.id, u.after] as const));
  const units = new Map<string, UnitNow>();
  for (const s of steps) {
    const row = rows.get(s.deployment_id);
    units.set(s.deployment_id, {
      // A unit deleted under the run (only an admin's forced delete can) holds nothing back.
      state: (row?.state ?? 'torn_down') as DeploymentState,
      after: after.get(s.deployment_id) ?? [],
      attempt: s.attempt_id ? (attempts.get(s.attempt_id) ?? null) : null,
    });
  }
  const options = runOptions(run);
  const view: RunView = {
    kind: run.kind as RunKind,
    state: run.state as RunState,
    onFailure: options.on_failure,
    cancelRequested: run.cancel_requested_at != null,
    force: options.force === true,
    steps,
  };
  return { run, stack, rows, view, advance: decideAdvance(view, units) };
}
