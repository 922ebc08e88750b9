// The one transactional state write of SPEC §2.3: compare-and-set on state (and the deployment's
// version), version bump, and one state_transition event per changed entity, attempt first.
import type { Transaction } from 'kysely';
import type { Mark } from '../domain/marks.ts';
import type { AttemptChange, DeploymentChange } from '../domain/transitions.ts';
import type { LifelineEvent, NewEvent } from '../domain/types.ts';
import type { AttemptsTable, Database, DeploymentsTable } from './schema.ts';
import { insertEvents, rememberStackOf } from './events.ts';
import { insertDeployment } from './deployments.ts';
import { insertRows, runCompiled } from './compiled.ts';
import { LostRace } from './lost-race.ts';
import { stackStateEvents } from './stacks.ts';

export { LostRace };

/** The columns of a deployment's scheduled retry (migration 011). */
export type RetryColumn = 'retry_number' | 'retry_of' | 'retry_at' | 'retry_attempt_id';

/** What clears a scheduled retry: every operator action writes it with its own change. */
export const NO_RETRY: Pick<DeploymentsTable, RetryColumn> = {
  retry_number: null,
  retry_of: null,
  retry_at: null,
  retry_attempt_id: null,
};

/** The columns of a deployment's drift and check schedule (migration 017, store/drift.ts). */
export type DriftColumn = 'drift_since' | 'drift_verdict' | 'next_check_at' | 'heal_at';

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
    set?: Partial<
      Pick<DeploymentsTable, 'current_attempt_id' | 'params' | 'outputs' | RetryColumn | DriftColumn>
    >;
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
    /** Told the whole row as the compare-and-set wrote it (a later write in the transaction needs no read). */
    onWritten?: (row: AttemptsTable) => void;
  };
  /** Appended before the state transitions (what led to them: a verifying check's lines and result). */
  eventsBefore?: LoggedEvent[];
  eventsAfter?: LoggedEvent[];
  /**
   * Keep this write's events there instead of appending them: a later write of the same transaction
   * appends them first, with its own (one append, still the last statement before the commit).
   */
  holdEventsIn?: HeldEvents;
  /** Events an earlier write of this transaction held: appended before this write's own. */
  heldEvents?: HeldEvents;
}

/** Events written but not yet appended (see `holdEventsIn`); insertEvents appends them. */
export interface HeldEvents {
  events: NewEvent[];
  offsets: (number | null)[];
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

/** The columns a compare-and-set writes itself, after the caller's `set`. */
const ATTEMPT_CAS_KEYS = new Set(['state', 'reason', 'version']);
const DEPLOYMENT_CAS_KEYS = new Set(['state', 'state_changed_at', 'version', 'updated_at']);

/**
 * The keys of `set` the builder binds (defined values), in its order; null when one is a column the
 * compare-and-set writes itself (the builder then keeps the key's place with the later value, so the
 * statement is built as is rather than compiled once).
 */
function definedKeys(set: object | undefined, own: Set<string>): string[] | null {
  const keys: string[] = [];
  if (!set) return keys;
  for (const [k, v] of Object.entries(set)) {
    if (own.has(k)) return null;
    if (v !== undefined) keys.push(k);
  }
  return keys;
}

export async function applyTransition(
  trx: Transaction<Database>,
  w: TransitionWrite,
): Promise<LifelineEvent[]> {
  const events: NewEvent[] = [];
  const offsets: (number | null)[] = [];
  if (w.heldEvents) {
    events.push(...w.heldEvents.events);
    offsets.push(...w.heldEvents.offsets);
  }
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
      const build = () => {
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
        return a.onWritten ? q.returningAll() : q.returning('version');
      };
      // Compiled once per shape (store/compiled.ts): the parameters in the order the builder lays them.
      const setKeys = definedKeys(a.set, ATTEMPT_CAS_KEYS);
      const params: unknown[] = setKeys?.map((k) => (a.set as Record<string, unknown>)[k]) ?? [];
      params.push(a.change.to, a.change.reason, 1, a.id, a.change.from);
      if (a.fence) {
        if (a.fence.owner !== null) params.push(a.fence.owner);
        params.push(a.fence.epoch);
      }
      if (a.expectWaiting !== undefined) params.push(a.expectWaiting);
      const shape = `attemptCas ${setKeys?.join(',')}|${a.fence ? (a.fence.owner === null ? 'fence0' : 'fence') : ''}|${a.expectWaiting !== undefined ? 'w' : ''}|${a.onWritten ? 'all' : ''}`;
      const row =
        setKeys && a.change.reason !== undefined
          ? (await runCompiled(trx, shape, params, build)).rows[0]
          : await build().executeTakeFirst();
      if (!row) throw new LostRace(`attempt ${a.id}`);
      attemptVersion = Number(row.version);
      a.onWritten?.(row as AttemptsTable);
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

  /** The deployment's stack, once its row was written (undefined: not known here; insertEvents looks). */
  let stackId: string | null | undefined;
  if (dep.insert) {
    await insertDeployment(trx, dep.insert);
    stackId = dep.insert.stack_id ?? null;
  } else if (dep.change || dep.set) {
    if (dep.expectState === undefined || dep.expectVersion === undefined) {
      throw new Error('applyTransition: a deployment update needs its expected state and version');
    }
    const bump = dep.change ? 1 : 0;
    const { expectState, expectVersion } = dep;
    const build = () => {
      let q = trx
        .updateTable('deployments')
        .set((eb) =>
          withKeys(dep.set, dep.change ? { state: dep.change.to, state_changed_at: w.at } : undefined, {
            version: eb('version', '+', bump),
            updated_at: w.at,
          }),
        )
        .where('id', '=', dep.id)
        .where('state', '=', expectState)
        .where('version', '=', expectVersion)
        .where('deleted_at', 'is', null);
      if (dep.expectRetryOf !== undefined) {
        const of = dep.expectRetryOf;
        q = q.where((eb) =>
          of === null ? eb('retry_attempt_id', 'is', null) : eb('retry_attempt_id', '=', of),
        );
      }
      // The stack comes back with the row: a standalone deployment costs no statement more.
      return q.returning('stack_id');
    };
    // Compiled once per shape (store/compiled.ts): the parameters in the order the builder lays them.
    const setKeys = definedKeys(dep.set, DEPLOYMENT_CAS_KEYS);
    const params: unknown[] = setKeys?.map((k) => (dep.set as Record<string, unknown>)[k]) ?? [];
    if (dep.change) params.push(dep.change.to, w.at);
    params.push(bump, w.at, dep.id, expectState, expectVersion);
    if (dep.expectRetryOf != null) params.push(dep.expectRetryOf);
    const retryShape = dep.expectRetryOf === undefined ? '' : dep.expectRetryOf === null ? 'retry0' : 'retry';
    const shape = `deploymentCas ${setKeys?.join(',')}|${dep.change ? 'change' : ''}|${retryShape}`;
    const row = setKeys
      ? (await runCompiled(trx, shape, params, build)).rows[0]
      : await build().executeTakeFirst();
    if (!row) throw new LostRace(`deployment ${dep.id}`);
    stackId = row.stack_id ?? null;
    rememberStackOf(dep.id, stackId);
  }
  if (dep.change) {
    events.push(
      deploymentTransitionEvent(
        dep.id,
        w.attempt?.id ?? null,
        dep.change,
        w.actor,
        dep.insert ? dep.insert.version : dep.expectVersion! + 1,
      ),
    );
  }
  // A unit's state moved: its stack's state follows in this transaction (SPEC §12.3).
  if (stackId && dep.change && !dep.insert) {
    events.push(
      ...(await stackStateEvents(trx, stackId, {
        at: w.at,
        actor: w.actor,
        trigger: 'unit_changed',
        reason: dep.id,
      })),
    );
  }
  while (offsets.length < events.length) offsets.push(null);
  for (const { logOffset, ...e } of w.eventsAfter ?? []) {
    events.push(e);
    offsets.push(logOffset ?? null);
  }
  if (stackId !== undefined) {
    for (const e of events) if (e.deployment_id === dep.id && e.stack_id === undefined) e.stack_id = stackId;
  }
  if (w.holdEventsIn) {
    w.holdEventsIn.events.push(...events);
    w.holdEventsIn.offsets.push(...offsets);
    return [];
  }
  return insertEvents(trx, events, w.at, offsets);
}

/** A deployment's `state_transition` event. */
export function deploymentTransitionEvent(
  id: string,
  attemptId: string | null,
  change: DeploymentChange,
  actor: string,
  version: number,
): NewEvent {
  return {
    type: 'state_transition',
    deployment_id: id,
    attempt_id: attemptId,
    data: {
      entity: 'deployment',
      id,
      from: change.from,
      to: change.to,
      trigger: change.trigger,
      reason: change.reason,
      actor,
      version,
    },
  };
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
