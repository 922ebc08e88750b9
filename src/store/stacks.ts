// Stack rows (015) and the one write of a stack's state: recomputed from its units and active run inside
// the transaction of the change that caused it, compare-and-set, with its state_transition event.
import type { Kysely, Transaction } from 'kysely';
import { decideStackState, type RunKind, type StackState, type StackTrigger } from '../domain/stack-state.ts';
import type { DeploymentState, NewEvent } from '../domain/types.ts';
import type { Database, DeploymentsTable, StacksTable } from './schema.ts';
import { insertRows } from './compiled.ts';
import { constraintOf } from './errors.ts';
import { dialectOf } from './instances.ts';
import { LostRace } from './lost-race.ts';

type Db = Kysely<Database> | Transaction<Database>;

/** By id or by name (live stacks only). Names cannot contain `_`, so an id never reads as a name. */
export async function selectStackByRef(db: Db, ref: string): Promise<StacksTable | undefined> {
  const live = db.selectFrom('stacks').selectAll().where('deleted_at', 'is', null);
  if (ref.startsWith('stk_')) {
    const byId = await live.where('id', '=', ref).executeTakeFirst();
    if (byId) return byId;
  }
  return live.where('name', '=', ref).executeTakeFirst();
}

export async function selectStackById(db: Db, id: string): Promise<StacksTable | undefined> {
  return db.selectFrom('stacks').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Did this write fail because a live stack already holds the name (stacks_name_live)? */
export function isStackNameTaken(err: unknown): boolean {
  if (constraintOf(err) === 'stacks_name_live') return true;
  const e = err as { code?: unknown; message?: unknown } | null;
  return (
    e?.code === 'SQLITE_CONSTRAINT_UNIQUE' &&
    typeof e.message === 'string' &&
    e.message.includes('stacks.name')
  );
}

export async function insertStack(trx: Transaction<Database>, row: StacksTable): Promise<void> {
  await insertRows(trx, 'stacks', [row]);
}

/** A stack's live unit deployments, in creation order (spec order at creation). */
export async function selectUnitRows(db: Db, stackId: string): Promise<DeploymentsTable[]> {
  return db
    .selectFrom('deployments')
    .selectAll()
    .where('stack_id', '=', stackId)
    .where('deleted_at', 'is', null)
    .orderBy('id')
    .execute();
}

/** What a stack's read shows of a unit: its deployment's columns and its current attempt's summary. */
export interface UnitView {
  id: string;
  name: string;
  plan: string;
  params: string;
  secret_params: string | null;
  state: string;
  outputs: string | null;
  unit_key: string | null;
  unit_index: number | null;
  drift_since: string | null;
  drift_verdict: string | null;
  heal_at: string | null;
  attempt_id: string | null;
  attempt_number: number | null;
  attempt_kind: string | null;
  attempt_state: string | null;
}

/**
 * A stack's live units with their current attempts, in creation order, in one query of only the columns
 * the read shows: a 1,000-unit stack is read often (dashboards, `--follow`), and every unused column of
 * every row costs (issue 19: p99 < 50 ms).
 */
export async function selectUnitViews(db: Db, stackId: string): Promise<UnitView[]> {
  const rows = await db
    .selectFrom('deployments as d')
    .leftJoin('attempts as a', 'a.id', 'd.current_attempt_id')
    .select([
      'd.id',
      'd.name',
      'd.plan',
      'd.params',
      'd.secret_params',
      'd.state',
      'd.outputs',
      'd.unit_key',
      'd.unit_index',
      'd.drift_since',
      'd.drift_verdict',
      'd.heal_at',
      'a.id as attempt_id',
      'a.number as attempt_number',
      'a.kind as attempt_kind',
      'a.state as attempt_state',
    ])
    .where('d.stack_id', '=', stackId)
    .where('d.deleted_at', 'is', null)
    .orderBy('d.id')
    .execute();
  return rows as UnitView[];
}

export interface StackListQuery {
  limit: number;
  /** id of the last item of the previous page; ids sort by creation time. */
  before?: string;
}

/** Newest first. */
export async function selectStackPage(db: Db, q: StackListQuery): Promise<StacksTable[]> {
  let query = db.selectFrom('stacks').selectAll().where('deleted_at', 'is', null);
  if (q.before) query = query.where('id', '<', q.before);
  return query.orderBy('id', 'desc').limit(q.limit).execute();
}

/** A new spec (PUT): compare-and-set on the version read, which it bumps. */
export async function updateStackSpec(
  trx: Transaction<Database>,
  id: string,
  expectVersion: number,
  set: { spec: string; labels: string },
  at: string,
): Promise<number> {
  const row = await trx
    .updateTable('stacks')
    .set((eb) => ({ spec: set.spec, labels: set.labels, updated_at: at, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where('version', '=', expectVersion)
    .where('deleted_at', 'is', null)
    .returning('version')
    .executeTakeFirst();
  if (!row) throw new LostRace(`stack ${id}`);
  return Number(row.version);
}

export async function markStackDeleted(
  trx: Transaction<Database>,
  id: string,
  expectVersion: number,
  at: string,
): Promise<void> {
  const res = await trx
    .updateTable('stacks')
    .set({ deleted_at: at, updated_at: at })
    .where('id', '=', id)
    .where('version', '=', expectVersion)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`stack ${id}`);
}

export interface StackCause {
  at: string;
  actor: string;
  trigger: StackTrigger;
  /** What caused it, e.g. the unit deployment's id or the run's. */
  reason?: string | null;
}

/**
 * Recomputes a stack's state (SPEC §12.3) from its active run and its live units, and when it moved
 * writes it (compare-and-set on state and version, version bumped) and returns its `state_transition`
 * event, which the caller appends in its own append of this transaction (invariant 10). Returns no event
 * when the state stays. On Postgres the stack row is locked first: two units of one stack changing at
 * once then see each other's state, so neither decides on a stale view of the other.
 */
export async function stackStateEvents(
  trx: Transaction<Database>,
  stackId: string,
  cause: StackCause,
): Promise<NewEvent[]> {
  let q = trx
    .selectFrom('stacks')
    .select(['id', 'name', 'state', 'version', 'active_run_id'])
    .where('id', '=', stackId)
    .where('deleted_at', 'is', null);
  if (dialectOf(trx) === 'postgres') q = q.forUpdate();
  const stack = await q.executeTakeFirst();
  if (!stack) return [];
  let run: RunKind | null = null;
  if (stack.active_run_id !== null) {
    const r = await trx
      .selectFrom('runs')
      .select('kind')
      .where('id', '=', stack.active_run_id)
      .executeTakeFirst();
    run = (r?.kind as RunKind | undefined) ?? null;
  }
  const units = await trx
    .selectFrom('deployments')
    .select('state')
    .where('stack_id', '=', stackId)
    .where('deleted_at', 'is', null)
    .execute();
  const change = decideStackState(
    stack.state as StackState,
    run,
    units.map((u) => u.state as DeploymentState),
    cause.trigger,
  );
  if (!change) return [];
  const version = Number(stack.version);
  const res = await trx
    .updateTable('stacks')
    .set({ state: change.to, version: version + 1, updated_at: cause.at })
    .where('id', '=', stackId)
    .where('state', '=', stack.state)
    .where('version', '=', version)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`stack ${stackId}`);
  return [stackTransitionEvent(stackId, stack.name, change.from, change.to, cause, version + 1)];
}

/** A stack's `state_transition` event (`data.entity: "stack"`), with `stack_id` set. */
export function stackTransitionEvent(
  stackId: string,
  name: string,
  from: StackState | null,
  to: StackState,
  cause: StackCause,
  version: number,
): NewEvent {
  return {
    type: 'state_transition',
    deployment_id: null,
    attempt_id: null,
    stack_id: stackId,
    data: {
      entity: 'stack',
      id: stackId,
      name,
      from,
      to,
      trigger: cause.trigger,
      reason: cause.reason ?? null,
      actor: cause.actor,
      version,
    },
  };
}

/** The stack of a deployment and whether a run is active on it: what the unit write guard asks. */
export async function selectUnitGuard(
  db: Db,
  stackId: string,
): Promise<{ name: string; active_run_id: string | null } | undefined> {
  return db
    .selectFrom('stacks')
    .select(['name', 'active_run_id'])
    .where('id', '=', stackId)
    .executeTakeFirst();
}

/** Unit deployment rows and their label rows, many to a statement (one of each for a small stack). */
export async function insertUnitDeployments(
  trx: Transaction<Database>,
  rows: DeploymentsTable[],
): Promise<void> {
  for (let i = 0; i < rows.length; i += 50) await insertRows(trx, 'deployments', rows.slice(i, i + 50));
  const labels = rows.flatMap((r) =>
    Object.entries(JSON.parse(r.labels) as Record<string, string>).map(([key, value]) => ({
      key,
      value,
      deployment_id: r.id,
    })),
  );
  for (let i = 0; i < labels.length; i += 200)
    await insertRows(trx, 'deployment_labels', labels.slice(i, i + 200));
}

/** Which of these names live deployments hold. */
export async function selectTakenNames(db: Db, names: string[]): Promise<string[]> {
  const taken: string[] = [];
  for (let i = 0; i < names.length; i += 500) {
    const rows = await db
      .selectFrom('deployments')
      .select('name')
      .where('name', 'in', names.slice(i, i + 500))
      .where('deleted_at', 'is', null)
      .execute();
    taken.push(...rows.map((r) => r.name));
  }
  return taken;
}

/** id, kind and state of these runs. */
export async function selectRunSummaries(
  db: Db,
  ids: string[],
): Promise<{ id: string; kind: string; state: string }[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('runs').select(['id', 'kind', 'state']).where('id', 'in', ids).execute();
}
