// Approve and reject (SPEC §13.3): a second person answers an attempt waiting for approval. Approve
// records the approver with an `approval_granted` event, then the attempt's gates are looked at again
// (it starts if nothing else holds it); reject cancels it (reason `rejected`). A refusal writes nothing.
import { findPlan } from '../../config/load.ts';
import { decideApproval } from '../../domain/approval.ts';
import { LifelineError } from '../../domain/errors.ts';
import type { Actor, Attempt, AttemptState } from '../../domain/types.ts';
import type { WriteOptions } from '../api.ts';
import { setApproved } from '../../store/approvals.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import { selectDeploymentById } from '../../store/deployments.ts';
import { insertEvents } from '../../store/events.ts';
import { selectGateRows } from '../../store/gates.ts';
import type { Transaction } from 'kysely';
import type { Database } from '../../store/schema.ts';
import { writeEnd } from '../attempt-writes.ts';
import type { Ctx } from '../context.ts';
import { reopen } from '../gates/keeper.ts';
import { nowIso } from '../ids.ts';
import { getAttempt } from '../queries.ts';
import { transactCommand } from '../tx.ts';
import { checkReason } from '../validate.ts';
import type { Watcher } from '../watcher.ts';

export async function approve(
  ctx: Ctx,
  watcher: Watcher,
  id: string,
  input: { reason: string },
  actor: Actor,
  w?: WriteOptions,
): Promise<Attempt> {
  checkReason(input.reason);
  await transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const { attempt } = await decide(ctx, trx, id, 'approve', actor);
    const at = nowIso();
    if (!(await setApproved(trx, id, actor.name, at))) {
      throw new LifelineError('INVALID_TRANSITION', `attempt ${id} is no longer waiting for approval`);
    }
    const events = await insertEvents(
      trx,
      [
        {
          type: 'approval_granted',
          deployment_id: attempt.deployment_id,
          attempt_id: id,
          data: {
            approver: actor.name,
            role: actor.role,
            reason: input.reason,
            requested_by: attempt.requested_by,
          },
        },
      ],
      at,
    );
    return { result: undefined, events };
  });
  // Its gates again, now: it starts here if nothing else holds it (the reconcile pass does it after a crash).
  await reopen(ctx, watcher, [id], w?.traceId);
  return getAttempt(ctx, id);
}

export async function reject(
  ctx: Ctx,
  id: string,
  input: { reason: string },
  actor: Actor,
  w?: WriteOptions,
): Promise<Attempt> {
  checkReason(input.reason);
  await transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    await decide(ctx, trx, id, 'reject', actor);
    const end = await writeEnd(
      trx,
      id,
      { kind: 'cancelled_before_start', reason: 'rejected' },
      {
        rc: null,
        recovered: false,
        actor: actor.name,
        expectWaiting: 1,
        detail: `rejected by ${actor.name}: ${input.reason}`,
      },
    );
    if (!end.ok) throw new LifelineError(end.refusal.code, end.refusal.detail);
    return { result: undefined, events: end.events };
  });
  return getAttempt(ctx, id);
}

/** Reads the attempt and asks the domain whether this actor may answer it now; throws the refusal. */
async function decide(
  ctx: Ctx,
  trx: Transaction<Database>,
  id: string,
  action: 'approve' | 'reject',
  actor: Actor,
) {
  const attempt = await selectAttemptById(trx, id);
  if (!attempt) throw new LifelineError('NOT_FOUND', `attempt ${id} not found`);
  const dep = await selectDeploymentById(trx, attempt.deployment_id);
  const plan = dep ? findPlan(ctx.config, dep.plan) : undefined;
  const rows = await selectGateRows(trx, id);
  const waiting =
    attempt.state === 'queued' &&
    Number(attempt.waiting ?? 0) === 1 &&
    !attempt.approved_by &&
    rows.some((r) => r.gate === 'approval' && r.opened_at === null);
  const d = decideApproval(
    action,
    { state: attempt.state as AttemptState, waitingForApproval: waiting, requestedBy: attempt.requested_by },
    actor,
    plan?.approval?.role ?? 'operator',
  );
  if (!d.ok) throw new LifelineError(d.code, d.message);
  return { attempt };
}
