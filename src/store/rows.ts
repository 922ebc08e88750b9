// Row <-> domain mapping. The only place that knows JSON is text and booleans are 0/1.
import { driftOf } from '../domain/drift.ts';
import type { Attempt, AttemptSummary, Deployment, LifelineEvent } from '../domain/types.ts';
import { parseOutputs } from '../domain/outputs.ts';
import type { AttemptsTable, DeploymentsTable, EventsTable } from './schema.ts';

/** A deployment row's drift as the API shows it (the deployment's and its stack unit's `drift`). */
export function driftOfRow(
  row: Pick<DeploymentsTable, 'drift_since' | 'drift_verdict' | 'heal_at'>,
): Deployment['drift'] {
  return (
    driftOf(row.drift_since, row.drift_verdict) && {
      since: row.drift_since!,
      verdict: row.drift_verdict as 'absent' | 'failed',
      heal_at: row.heal_at ?? null,
    }
  );
}

export function toDeployment(row: DeploymentsTable, current: AttemptSummary | null): Deployment {
  return {
    id: row.id,
    name: row.name,
    plan: row.plan,
    params: JSON.parse(row.params),
    labels: JSON.parse(row.labels),
    state: row.state as Deployment['state'],
    version: Number(row.version),
    state_changed_at: row.state_changed_at,
    current_attempt: current,
    retry:
      row.retry_at != null && row.retry_number != null && row.retry_of != null
        ? { number: Number(row.retry_number), of: Number(row.retry_of), at: row.retry_at }
        : null,
    outputs: parseOutputs(row.outputs),
    drift: driftOfRow(row),
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export function toAttempt(row: AttemptsTable): Attempt {
  return {
    id: row.id,
    deployment_id: row.deployment_id,
    number: Number(row.number),
    kind: row.kind as Attempt['kind'],
    state: row.state as Attempt['state'],
    reason: row.reason as Attempt['reason'],
    rc: row.rc === null ? null : Number(row.rc),
    params: JSON.parse(row.params),
    force: Boolean(row.force),
    requested_by: row.requested_by,
    queued_at: row.queued_at,
    started_at: row.started_at,
    ended_at: row.ended_at,
    cancel_requested_at: row.cancel_requested_at,
    recovered: Boolean(row.recovered),
    owner: row.owner,
    detail: row.detail ?? null,
    rollback_of: row.rollback_of == null ? null : Number(row.rollback_of),
    outputs: parseOutputs(row.outputs),
    // Filled in by the lifecycle from the gate records (present.ts).
    waiting: [],
  };
}

export function toSummary(row: Pick<AttemptsTable, 'id' | 'number' | 'kind' | 'state'>): AttemptSummary {
  return {
    id: row.id,
    number: Number(row.number),
    kind: row.kind as AttemptSummary['kind'],
    state: row.state as AttemptSummary['state'],
  };
}

export function toEvent(row: EventsTable): LifelineEvent {
  const e: LifelineEvent = {
    seq: Number(row.seq),
    type: row.type as LifelineEvent['type'],
    at: row.at,
    deployment_id: row.deployment_id,
    attempt_id: row.attempt_id,
    data: JSON.parse(row.data),
  };
  // Only events of a stack or its units carry it: standalone events keep their shape.
  if (row.stack_id != null) e.stack_id = row.stack_id;
  return e;
}
