// The resolve command: an admin settles a deployment's state by hand, with a reason.
import { decideResolve } from '../../domain/transitions.ts';
import type { Actor, Deployment, DeploymentState } from '../../domain/types.ts';
import { selectDeploymentById } from '../../store/deployments.ts';
import { applyTransition, NO_RETRY } from '../../store/transition.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { presentDeployments } from '../present.ts';
import { deploymentByRef } from '../queries.ts';
import { transactCommand } from '../tx.ts';
import { releaseResolved } from '../gates/release.ts';
import { checkReason } from '../validate.ts';
import { allowed, asRead, callerOf, checkVersion } from './guards.ts';

export async function resolve(
  ctx: Ctx,
  ref: string,
  input: { state: 'ready' | 'failed' | 'torn_down'; reason: string },
  actor: Actor,
  w?: WriteOptions,
): Promise<Deployment> {
  checkReason(input.reason);
  return transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const dep = await deploymentByRef(trx, ref);
    checkVersion(dep, w);
    const decision = decideResolve(dep.state as DeploymentState, input.state, input.reason, callerOf(actor));
    allowed(decision);
    await releaseResolved(trx, dep);
    const events = await applyTransition(trx, {
      at: nowIso(),
      actor: actor.name,
      deployment: { ...asRead(dep), change: decision.writes.deployment, set: NO_RETRY },
    });
    const fresh = (await selectDeploymentById(trx, dep.id))!;
    return { result: (await presentDeployments(ctx, trx, [fresh]))[0], events };
  });
}
