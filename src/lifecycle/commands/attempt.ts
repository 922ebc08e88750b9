// Accepting an attempt (deploy or teardown): the queued attempt and the deployment's move in one
// transaction, then the launch.
import path from 'node:path';
import type { Transaction } from 'kysely';
import { findPlan } from '../../config/load.ts';
import type { PlanConfig } from '../../config/types.ts';
import { LifelineError } from '../../domain/errors.ts';
import type { Decision } from '../../domain/transitions.ts';
import type { Actor, Attempt, AttemptKind, NewEvent } from '../../domain/types.ts';
import { selectLastAttemptNumber } from '../../store/attempts.ts';
import type { AttemptsTable, Database, DeploymentsTable } from '../../store/schema.ts';
import { applyTransition, NO_RETRY } from '../../store/transition.ts';
import { retryReason } from '../../domain/retry.ts';
import { clearedEvent, driftOf } from '../../domain/drift.ts';
import { NO_DRIFT } from '../../store/drift.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { newAttemptId, nowIso } from '../ids.ts';
import { deploymentByRef, getAttempt } from '../queries.ts';
import { transactCommand } from '../tx.ts';
import { runGates } from '../gates/admit.ts';
import type { Watcher } from '../watcher.ts';
import { unitLaunchVars } from '../runs/inputs.ts';
import { allowed, asRead, checkVersion, guardUnitWrite } from './guards.ts';

export interface AttemptRequest {
  ref: string;
  actor: Actor;
  w: WriteOptions | undefined;
  force: boolean;
  /** The stack run launching this unit (SPEC §12.4): its own run does not block it. */
  runId?: string;
  /** Told once the accept committed, before the launch (tests: a crash point). */
  onCommitted?: () => void;
}

/** What an attempt is accepted as: the domain's verdict, its params, and what it rolls back to. */
export interface AttemptPlan {
  decision: Decision;
  params: Record<string, unknown>;
  rollbackOf?: number;
  /** An automatic retry (SPEC §9.1): which one, and the failed attempt whose schedule it consumes. */
  retry?: { number: number; of: number; failedId: string };
  /** The deployment transition's reason instead of the domain's (a stack run's `stack run <id>`, a self-heal's `self_heal 1/3`). */
  reason?: string;
  /** Appended in the same transaction after the transitions (a stack run's own events). */
  eventsAfter?: NewEvent[];
}

/** Decided on the fresh deployment row, inside the accepting transaction (so it may read more). */
export type DecideAttempt = (
  dep: DeploymentsTable,
  plan: PlanConfig,
  trx: Transaction<Database>,
  attemptId: string,
) => AttemptPlan | Promise<AttemptPlan>;

export async function startAttempt(
  ctx: Ctx,
  watcher: Watcher,
  kind: AttemptKind,
  req: AttemptRequest,
  decide: DecideAttempt,
): Promise<Attempt> {
  const { actor, force } = req;
  const id = newAttemptId();
  // Registered before the commit: a cancel that races the launch must ask, not cancel outright.
  watcher.expect(id);
  try {
    const { row, dep, plan, stack, waiting } = await transactCommand(
      ctx.store,
      ctx.bus,
      req.w,
      async (trx) => {
        const dep = await deploymentByRef(trx, req.ref);
        checkVersion(dep, req.w);
        await guardUnitWrite(trx, dep, req.runId);
        const plan = findPlan(ctx.config, dep.plan);
        if (!plan) throw new LifelineError('PLAN_NOT_FOUND', `plan ${dep.plan} is no longer configured`);
        const { decision, params, rollbackOf, retry, reason, eventsAfter } = await decide(dep, plan, trx, id);
        allowed(decision);
        const at = nowIso();
        const row: AttemptsTable = {
          id,
          deployment_id: dep.id,
          number: (await selectLastAttemptNumber(trx, dep.id)) + 1,
          kind,
          state: decision.writes.attempt!.to,
          reason: null,
          rc: null,
          params: JSON.stringify(params),
          secret_params: JSON.stringify(plan.secretParams),
          force: force ? 1 : 0,
          requested_by: actor.name,
          queued_at: at,
          started_at: null,
          ended_at: null,
          cancel_requested_at: null,
          timed_out_at: null,
          recovered: 0,
          owner: ctx.instanceId,
          owner_epoch: ctx.lease.epoch,
          prev_state: dep.state,
          version: 1,
          pid: null,
          process_start: null,
          boot_id: null,
          run_dir: path.join(ctx.config.dataDir, 'attempts', id),
          timeout_ms: plan.timeoutMs,
          cancel_grace_ms: plan.cancelGraceMs,
          stdout_offset: 0,
          stderr_offset: 0,
          events_offset: 0,
          rollback_of: rollbackOf ?? null,
          retry_number: retry?.number ?? null,
        };
        const change = decision.writes.deployment;
        const why = reason ?? (retry ? retryReason(retry.number, retry.of) : undefined);
        const stack = dep.stack_id ? await unitLaunchVars(trx, dep) : undefined;
        // An attempt changes the world on purpose: drift ends with it (SPEC §14.2), and a waiting heal.
        const drift = driftOf(dep.drift_since, dep.drift_verdict);
        const events = await applyTransition(trx, {
          at,
          actor: actor.name,
          deployment: {
            ...asRead(dep),
            change: why !== undefined && change ? { ...change, reason: why } : change,
            // Every attempt clears a scheduled retry; a retry's own start only while it is still that one.
            set: {
              current_attempt_id: id,
              ...(kind === 'deploy' ? { params: row.params } : {}),
              ...NO_RETRY,
              ...NO_DRIFT,
            },
            ...(retry ? { expectRetryOf: retry.failedId } : {}),
          },
          attempt: { id, change: decision.writes.attempt!, insert: row },
          eventsAfter: [
            ...(eventsAfter ?? []),
            ...(drift ? [clearedEvent(dep.id, drift, kind, actor.name)] : []),
          ],
        });
        // SPEC §13: through its gates in the same transaction; a refusal throws and nothing is written.
        const gates = await runGates(ctx, trx, { attempt: row, dep, plan, at }, true);
        return {
          result: { row, dep, plan, stack, waiting: gates.waiting },
          events: [...events, ...gates.events],
        };
      },
    );
    req.onCommitted?.();
    // A waiting attempt is launched by whichever instance opens its last gate (lifecycle/gates/).
    if (!waiting)
      await watcher.launch({ attempt: row, deploymentName: dep.name, plan, ...(stack ? { stack } : {}) });
    return getAttempt(ctx, id, dep.plan);
  } finally {
    watcher.forget(id);
  }
}
