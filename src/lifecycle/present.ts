// Turns stored rows into API objects: secret params masked, current attempts summarised.
import type { Kysely } from 'kysely';
import { findPlan } from '../config/load.ts';
import type { PlanConfig } from '../config/types.ts';
import type {
  Attempt,
  Deployment,
  DeploymentState,
  InstanceInfo,
  LifelineEvent,
  Transition,
} from '../domain/types.ts';
import { makeRedactor, maskParams, redactDeep } from '../runner/redact.ts';
import { selectAttemptsByIds } from '../store/attempts.ts';
import type { GateName, WaitingGate } from '../domain/gates.ts';
import { selectWaiting, type WaitingRow } from '../store/gates.ts';
import { toAttempt, toDeployment, toSummary } from '../store/rows.ts';
import type { AttemptsTable, Database, DeploymentsTable, InstancesTable } from '../store/schema.ts';
import type { PlanInfo } from './api.ts';
import { secretNames, secretValues, type Ctx } from './context.ts';

function mask(
  ctx: Ctx,
  planName: string,
  params: Record<string, unknown>,
  stored: string | null | undefined,
): Record<string, unknown> {
  return maskParams(params, secretNames(findPlan(ctx.config, planName), stored));
}

/**
 * Outputs are masked when they are taken (ingestion); masked again here with the params the row holds
 * now, so a value that became a secret param's since is not shown either.
 */
export function maskOutputs(
  ctx: Ctx,
  planName: string,
  params: Record<string, unknown>,
  stored: string | null | undefined,
  outputs: Record<string, unknown>,
): Record<string, unknown> {
  if (Object.keys(outputs).length === 0) return outputs;
  const secrets = secretValues(findPlan(ctx.config, planName), params, stored);
  if (secrets.length === 0) return outputs;
  return redactDeep(outputs, makeRedactor(secrets)) as Record<string, unknown>;
}

export async function presentDeployments(
  ctx: Ctx,
  db: Kysely<Database>,
  rows: DeploymentsTable[],
): Promise<Deployment[]> {
  const currentIds = rows.map((r) => r.current_attempt_id).filter((x): x is string => x !== null);
  const attempts = new Map((await selectAttemptsByIds(db, currentIds)).map((a) => [a.id, a]));
  return rows.map((r) => {
    const cur = r.current_attempt_id ? attempts.get(r.current_attempt_id) : undefined;
    const dep = toDeployment(r, cur ? toSummary(cur) : null);
    return {
      ...dep,
      params: mask(ctx, r.plan, dep.params, r.secret_params),
      outputs: maskOutputs(ctx, r.plan, dep.params, r.secret_params, dep.outputs),
    };
  });
}

export function presentAttempt(
  ctx: Ctx,
  row: AttemptsTable,
  planName: string,
  waiting: WaitingGate[] = [],
): Attempt {
  const a = toAttempt(row);
  return {
    ...a,
    params: mask(ctx, planName, a.params, row.secret_params),
    outputs: maskOutputs(ctx, planName, a.params, row.secret_params, a.outputs),
    waiting,
  };
}

/** The gates holding each of these attempts (SPEC §13), a queue's position as it is now. */
export async function waitingOf(
  db: Kysely<Database>,
  rows: readonly AttemptsTable[],
): Promise<Map<string, WaitingGate[]>> {
  const ids = rows.filter((r) => Number(r.waiting ?? 0) === 1).map((r) => r.id);
  return groupWaiting(await selectWaiting(db, ids));
}

export function groupWaiting(rows: readonly WaitingRow[]): Map<string, WaitingGate[]> {
  const out = new Map<string, WaitingGate[]>();
  for (const r of rows) {
    const detail = JSON.parse(r.detail) as Record<string, unknown>;
    if (r.key !== null) detail.position = r.position;
    const list = out.get(r.attempt_id) ?? [];
    list.push({ gate: r.gate as GateName, detail, since: r.since });
    out.set(r.attempt_id, list);
  }
  return out;
}

export function presentTransition(e: LifelineEvent): Transition {
  return {
    seq: e.seq,
    at: e.at,
    from: e.data.from as DeploymentState | null,
    to: e.data.to as DeploymentState,
    trigger: e.data.trigger as string,
    reason: (e.data.reason as string | null) ?? null,
    actor: e.data.actor as string,
    attempt_id: e.attempt_id,
  };
}

export function presentPlan(p: PlanConfig): PlanInfo {
  return {
    name: p.name,
    description: p.description,
    params_schema: p.paramsSchema,
    has_check: p.check !== null,
  };
}

/** `horizon`: the oldest last_seen_at (ms) of a live lease. */
export function presentInstance(r: InstancesTable, horizon: number): InstanceInfo {
  return {
    id: r.id,
    host: r.host,
    port: r.port === null ? null : Number(r.port),
    role: r.role,
    data_dir: r.data_dir,
    started_at: r.started_at,
    last_seen_at: r.last_seen_at,
    alive: Date.parse(r.last_seen_at) >= horizon,
  };
}
