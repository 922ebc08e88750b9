// The create command: a new deployment in `pending`, with its deployment_created event.
import { findPlan } from '../../config/load.ts';
import { LifelineError } from '../../domain/errors.ts';
import { decideCreate } from '../../domain/transitions.ts';
import type { Transaction } from 'kysely';
import type { PlanConfig } from '../../config/types.ts';
import type { Actor, Deployment, LifelineEvent } from '../../domain/types.ts';
import { maskParams } from '../../runner/redact.ts';
import { isNameTaken } from '../../store/deployments.ts';
import type { Database, DeploymentsTable } from '../../store/schema.ts';
import { applyTransition } from '../../store/transition.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { newDeploymentId, nowIso } from '../ids.ts';
import { presentDeployments } from '../present.ts';
import { transactCommand } from '../tx.ts';
import { asParams, checkLabels, checkName, checkParams, validation } from '../validate.ts';
import { allowed } from './guards.ts';

export async function createDeployment(
  ctx: Ctx,
  input: { name: string; plan: string; params?: unknown; labels?: Record<string, string> },
  actor: Actor,
  w?: WriteOptions,
): Promise<Deployment> {
  const name = checkName(input.name);
  const plan = typeof input.plan === 'string' ? findPlan(ctx.config, input.plan) : undefined;
  if (!plan) throw new LifelineError('PLAN_NOT_FOUND', `plan ${String(input.plan)} is not configured`);
  const params = asParams(input.params, 'params');
  checkParams(plan, params);
  const labels = checkLabels(input.labels);
  // Only apply (and stacks) set lifeline.* labels: a hand-set lifeline.source would hand the deployment
  // to that source's prune.
  const reserved = Object.keys(labels).find((k) => k.startsWith('lifeline.'));
  if (reserved) throw validation(`labels.${reserved}`, 'lifeline.* labels are set by Lifeline');
  allowed(decideCreate());
  // The name is checked by the insert itself (the unique index deployments_name_live), not by a read
  // before it. A keyed request that loses the name once is re-run instead: if the winner was the same
  // request under the same Idempotency-Key, the re-run replays its answer (lifecycle/tx.ts).
  let lostName = false;
  return transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    try {
      const { row, events } = await createDeploymentIn(trx, { name, plan, params, labels }, actor);
      return { result: (await presentDeployments(ctx, trx, [row]))[0], events };
    } catch (err) {
      if (!isNameTaken(err)) throw err;
      if (w?.idempotency && !lostName) {
        lostName = true;
        throw err; // a conflict: transact re-runs the unit
      }
      throw new LifelineError('DEPLOYMENT_EXISTS', `deployment ${name} already exists`);
    }
  });
}

/** The writes of a create inside the caller's transaction (create, and apply's one transaction). */
export async function createDeploymentIn(
  trx: Transaction<Database>,
  input: { name: string; plan: PlanConfig; params: Record<string, unknown>; labels: Record<string, string> },
  actor: Actor,
): Promise<{ row: DeploymentsTable; events: LifelineEvent[] }> {
  const { name, plan, params, labels } = input;
  const decision = decideCreate();
  allowed(decision);
  {
    const at = nowIso();
    const row: DeploymentsTable = {
      id: newDeploymentId(),
      name,
      plan: plan.name,
      params: JSON.stringify(params),
      secret_params: JSON.stringify(plan.secretParams),
      labels: JSON.stringify(labels),
      state: decision.writes.deployment!.to,
      version: 1,
      state_changed_at: at,
      current_attempt_id: null,
      created_at: at,
      updated_at: at,
      deleted_at: null,
    };
    const events = await applyTransition(trx, {
      at,
      actor: actor.name,
      deployment: { id: row.id, change: decision.writes.deployment, insert: row },
      eventsBefore: [
        {
          type: 'deployment_created',
          deployment_id: row.id,
          attempt_id: null,
          data: { name: row.name, plan: plan.name, params: maskParams(params, plan.secretParams), labels },
        },
      ],
    });
    return { row, events };
  }
}
