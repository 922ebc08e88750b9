// The delete command: marks a deployment deleted (its history stays readable by id).
import { LifelineError } from '../../domain/errors.ts';
import { decideDelete } from '../../domain/transitions.ts';
import type { Actor, DeploymentState } from '../../domain/types.ts';
import { markDeploymentDeleted } from '../../store/deployments.ts';
import { insertEvents } from '../../store/events.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { deploymentByRef } from '../queries.ts';
import { transactCommand } from '../tx.ts';
import { releaseResolved } from '../gates/release.ts';
import { allowed, callerOf, checkVersion } from './guards.ts';

export async function deleteDeployment(
  ctx: Ctx,
  ref: string,
  opts: { force?: boolean },
  actor: Actor,
  w?: WriteOptions,
): Promise<void> {
  await transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const dep = await deploymentByRef(trx, ref);
    checkVersion(dep, w);
    allowed(decideDelete(dep.state as DeploymentState, opts.force === true, callerOf(actor)));
    const at = nowIso();
    // A forced delete of an unknown deployment settles it too: its attempt's slot frees (SPEC §13.1).
    await releaseResolved(trx, dep);
    if (!(await markDeploymentDeleted(trx, dep.id, Number(dep.version), at))) {
      throw new LifelineError('INVALID_TRANSITION', 'the deployment changed while it was being deleted');
    }
    const events = await insertEvents(
      trx,
      [
        {
          type: 'deployment_deleted',
          deployment_id: dep.id,
          attempt_id: null,
          data: { name: dep.name, actor: actor.name },
        },
      ],
      at,
    );
    return { result: undefined, events };
  });
}
