// The one transactional state write of SPEC §2.3: compare-and-set on state (and the deployment's
// version), version bump, and one state_transition event per changed entity, attempt first.
import type { Transaction } from 'kysely';
import type { Mark } from '../domain/marks.ts';
import type { AttemptChange, DeploymentChange } from '../domain/transitions.ts';
import type { LifelineEvent, NewEvent } from '../domain/types.ts';
import type { AttemptsTable, Database, DeploymentsTable } from './schema.ts';
import { insertEvents } from './events.ts';
import { insertDeployment } from './deployments.ts';
import { insertRows } from './compiled.ts';

/** Zero rows matched the expected state: another writer won. Nothing of the transaction is kept. */
export class LostRace extends Error {
  constructor(what: string) {
    super(`lost the race: ${what} changed under us`);
    this.name = 'LostRace';
  }
}

/** The columns of a deployment's scheduled retry (migration 011). */
export type RetryColumn = 'retry_number' | 'retry_of' | 'retry_at' | 'retry_attempt_id';

/** What clears a scheduled retry: every operator action writes it with its own change. */
export const NO_RETRY: Pick<DeploymentsTable, RetryColumn> = {
  retry_number: null,
  retry_of: null,
  retry_at: null,
  retry_attempt_id: null,
};

export interface Fence {
  owner: string | null;
  epoch: number;
}

export interface TransitionWrite {
  at: string;
  actor: string;
  deployment: {
    id: string;
    /** Compare-and-set guard; required whenever an existing deployment row changes. */
    expectState?: string;
    expectVersion?: number;
    change?: DeploymentChange;
    /** The full row when the change creates the deployment (trigger `created`). */
    insert?: DeploymentsTable;
    set?: Partial<Pick<DeploymentsTable, 'current_attempt_id' | 'params' | RetryColumn>>;
    /** Compare-and-set on the scheduled retry (SPEC §9.1): the failed attempt it reruns, or null for none. */
    expectRetryOf?: string | null;
  };
  attempt?: {
    id: string;
    change: AttemptChange;
    /** The full row when the change creates the attempt (trigger `accepted`). */
    insert?: AttemptsTable;
    set?: Partial<AttemptsTable>;
    /** Fencing: the row must still name this owner and lease epoch (docs/scaling.md). */
    fence?: Fence;
    /** Compare-and-set on whether a gate holds it (SPEC §13): a waiting attempt opened meanwhile is not cancelled as unstarted. */
    expectWaiting?: 0 | 1;
  };
  /** Appended before the state transitions (what led to them: a verifying check's lines and result). */
  eventsBefore?: LoggedEvent[];
  eventsAfter?: LoggedEvent[];
}

/** An event to append; a log_line says where it starts in its attempt's log text (store/logs.ts). */
export type LoggedEvent = NewEvent & { logOffset?: number };

/**
 * `{ ...a, ...b, ... }` copied key by key: on Node 20 a spread followed by keys the first object lacks
 * costs microseconds per object (docs/performance.md), and every transition builds these.
 */
function withKeys<T extends object>(...parts: (object | undefined)[]): T {
  const out: Record<string, unknown> = {};
  for (const p of parts) {
    if (!p) continue;
    for (const k of Object.keys(p)) out[k] = (p as Record<string, unknown>)[k];
  }
  return out as T;
}

export async function applyTransition(
  trx: Transaction<Database>,
  w: TransitionWrite,
): Promise<LifelineEvent[]> {
  const events: NewEvent[] = [];
  const offsets: (number | null)[] = [];
  for (const { logOffset, ...e } of w.eventsBefore ?? []) {
    events.push(e);
    offsets.push(logOffset ?? null);
  }
  const dep = w.deployment;

  if (w.attempt) {
    const a = w.attempt;
    let attemptVersion: number;
    if (a.insert) {
      await insertRows(trx, 'attempts', [a.insert]);
      attemptVersion = a.insert.version;
    } else {
      let q = trx
        .updateTable('attempts')
        .set((eb) =>
          withKeys(a.set, {
            state: a.change.to,
            reason: a.change.reason,
            version: eb('version', '+', 1),
          }),
        )
        .where('id', '=', a.id)
        .where('state', '=', a.change.from as string);
      if (a.fence) {
        const { owner, epoch } = a.fence;
        q = q.where((eb) => (owner === null ? eb('owner', 'is', null) : eb('owner', '=', owner)));
        q = q.where('owner_epoch', '=', epoch);
      }
      if (a.expectWaiting !== undefined) q = q.where('waiting', '=', a.expectWaiting);
      const row = await q.returning('version').executeTakeFirst();
      if (!row) throw new LostRace(`attempt ${a.id}`);
      attemptVersion = Number(row.version);
    }
    events.push({
      type: 'state_transition',
      deployment_id: dep.id,
      attempt_id: a.id,
      data: {
        entity: 'attempt',
        id: a.id,
        from: a.change.from,
        to: a.change.to,
        trigger: a.change.trigger,
        reason: a.change.reason,
        actor: w.actor,
        version: attemptVersion,
      },
    });
  }

  if (dep.insert) {
    await insertDeployment(trx, dep.insert);
  } else if (dep.change || dep.set) {
    if (dep.expectState === undefined || dep.expectVersion === undefined) {
      throw new Error('applyTransition: a deployment update needs its expected state and version');
    }
    const bump = dep.change ? 1 : 0;
    let q = trx
      .updateTable('deployments')
      .set((eb) =>
        withKeys(dep.set, dep.change ? { state: dep.change.to, state_changed_at: w.at } : undefined, {
          version: eb('version', '+', bump),
          updated_at: w.at,
        }),
      )
      .where('id', '=', dep.id)
      .where('state', '=', dep.expectState)
      .where('version', '=', dep.expectVersion)
      .where('deleted_at', 'is', null);
    if (dep.expectRetryOf !== undefined) {
      const of = dep.expectRetryOf;
      q = q.where((eb) =>
        of === null ? eb('retry_attempt_id', 'is', null) : eb('retry_attempt_id', '=', of),
      );
    }
    const res = await q.executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new LostRace(`deployment ${dep.id}`);
  }
  if (dep.change) {
    events.push({
      type: 'state_transition',
      deployment_id: dep.id,
      attempt_id: w.attempt?.id ?? null,
      data: {
        entity: 'deployment',
        id: dep.id,
        from: dep.change.from,
        to: dep.change.to,
        trigger: dep.change.trigger,
        reason: dep.change.reason,
        actor: w.actor,
        version: dep.insert ? dep.insert.version : dep.expectVersion! + 1,
      },
    });
  }
  while (offsets.length < events.length) offsets.push(null);
  for (const { logOffset, ...e } of w.eventsAfter ?? []) {
    events.push(e);
    offsets.push(logOffset ?? null);
  }
  return insertEvents(trx, events, w.at, offsets);
}

/** A mark on an active attempt (domain/marks.ts): set once, with its event, in the caller's transaction. */
export interface MarkWrite {
  at: string;
  attemptId: string;
  deploymentId: string;
  mark: Mark;
  /** The states the attempt must still be in. */
  states: readonly string[];
  /** Fencing, as for a transition: the row must still name this owner and lease epoch. */
  fence?: Fence;
  event: { type: 'cancel_requested' | 'timeout_reached'; data: Record<string, unknown> };
}

/**
 * Sets the mark (compare-and-set: still in one of `states`, not yet marked, still fenced) and appends
 * its event. The attempt's version counts its transitions, so a mark leaves it alone. Returns the
 * events, or null when the row no longer matches (marked already, ended, or not this owner's).
 */
export async function applyMark(trx: Transaction<Database>, w: MarkWrite): Promise<LifelineEvent[] | null> {
  let q = trx
    .updateTable('attempts')
    .set({ [w.mark]: w.at })
    .where('id', '=', w.attemptId)
    .where('state', 'in', [...w.states])
    .where(w.mark, 'is', null);
  if (w.fence) {
    const { owner, epoch } = w.fence;
    q = q.where((eb) => (owner === null ? eb('owner', 'is', null) : eb('owner', '=', owner)));
    q = q.where('owner_epoch', '=', epoch);
  }
  const res = await q.executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) return null;
  const event: NewEvent = { ...w.event, deployment_id: w.deploymentId, attempt_id: w.attemptId };
  return insertEvents(trx, [event], w.at);
}
