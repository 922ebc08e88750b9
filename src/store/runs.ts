// Run rows (015, SPEC §12.4) and their one write: a compare-and-set on the run's version that bumps it,
// so of two writers (two instances, or a launch and a cancel) that read one version only one commits.
import type { Kysely, Transaction } from 'kysely';
import type { RunChange } from '../domain/stack-run.ts';
import type { NewEvent } from '../domain/types.ts';
import { insertRows } from './compiled.ts';
import { LostRace } from './lost-race.ts';
import type { Database, RunsTable } from './schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

export async function insertRun(trx: Transaction<Database>, row: RunsTable): Promise<void> {
  await insertRows(trx, 'runs', [row]);
}

export async function selectRunById(db: Db, id: string): Promise<RunsTable | undefined> {
  return db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
}

/** A stack's runs, newest first (ids sort by creation), after the keyset cursor `before`. */
export async function selectRunPage(
  db: Db,
  stackId: string,
  q: { limit: number; before?: string },
): Promise<RunsTable[]> {
  let query = db.selectFrom('runs').selectAll().where('stack_id', '=', stackId);
  if (q.before) query = query.where('id', '<', q.before);
  return query.orderBy('id', 'desc').limit(q.limit).execute();
}

/** Every run still queued or running: what the reconcile pass advances. */
export async function selectActiveRunIds(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('runs')
    .select('id')
    .where('state', 'in', ['queued', 'running'])
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}

export type RunSet = Partial<
  Pick<RunsTable, 'state' | 'steps' | 'reason' | 'ended_at' | 'cancel_requested_at' | 'cancel_requested_by'>
>;

/** The run's compare-and-set: only from the version read; returns the new version, else LostRace. */
export async function updateRun(
  trx: Transaction<Database>,
  id: string,
  expectVersion: number,
  set: RunSet,
  at: string,
): Promise<number> {
  const row = await trx
    .updateTable('runs')
    .set((eb) => ({ ...set, updated_at: at, version: eb('version', '+', 1) }))
    .where('id', '=', id)
    .where('version', '=', expectVersion)
    .returning('version')
    .executeTakeFirst();
  if (!row) throw new LostRace(`run ${id}`);
  return Number(row.version);
}

/** Makes `runId` the stack's active run: only while it has none (one active run per stack). */
export async function claimStackRun(
  trx: Transaction<Database>,
  stackId: string,
  runId: string,
  at: string,
): Promise<void> {
  const res = await trx
    .updateTable('stacks')
    .set({ active_run_id: runId, updated_at: at })
    .where('id', '=', stackId)
    .where('active_run_id', 'is', null)
    .where('deleted_at', 'is', null)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`stack ${stackId}`);
}

/** The run ended: the stack has no active run any more (only if it is still this one). */
export async function releaseStackRun(
  trx: Transaction<Database>,
  stackId: string,
  runId: string,
  at: string,
): Promise<void> {
  const res = await trx
    .updateTable('stacks')
    .set({ active_run_id: null, updated_at: at })
    .where('id', '=', stackId)
    .where('active_run_id', '=', runId)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`stack ${stackId}`);
}

/** A run's `state_transition` event (`data.entity: "run"`), with the stack's id. */
export function runTransitionEvent(
  run: { id: string; stack_id: string; kind: string },
  change: RunChange,
  actor: string,
  version: number,
): NewEvent {
  return {
    type: 'state_transition',
    deployment_id: null,
    attempt_id: null,
    stack_id: run.stack_id,
    data: {
      entity: 'run',
      id: run.id,
      kind: run.kind,
      from: change.from,
      to: change.to,
      trigger: change.trigger,
      reason: change.reason,
      actor,
      version,
    },
  };
}

/** The params of each deployment's last succeeded deploy attempt (those that have one). */
export async function selectLastDeployedParams(
  db: Db,
  deploymentIds: string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (deploymentIds.length === 0) return out;
  const rows = await db
    .selectFrom('attempts as a')
    .select(['a.deployment_id', 'a.params'])
    .where('a.deployment_id', 'in', deploymentIds)
    .where('a.kind', '=', 'deploy')
    .where('a.state', '=', 'succeeded')
    .where((eb) =>
      eb(
        'a.number',
        '=',
        eb
          .selectFrom('attempts as b')
          .select((b) => b.fn.max('b.number').as('n'))
          .whereRef('b.deployment_id', '=', 'a.deployment_id')
          .where('b.kind', '=', 'deploy')
          .where('b.state', '=', 'succeeded'),
      ),
    )
    .execute();
  for (const r of rows) out.set(r.deployment_id, r.params);
  return out;
}

/** Names of deployments by id, deleted ones included (a run's record outlives its units). */
export async function selectDeploymentNames(db: Db, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db.selectFrom('deployments').select(['id', 'name']).where('id', 'in', ids).execute();
  return new Map(rows.map((r) => [r.id, r.name] as const));
}
