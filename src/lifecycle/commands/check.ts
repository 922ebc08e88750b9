// The check command: accepts a plan's check and runs it in the background, one at a time per deployment.
import { findPlan } from '../../config/load.ts';
import { LifelineError } from '../../domain/errors.ts';
import { decideCheck } from '../../domain/transitions.ts';
import type { Actor, DeploymentState } from '../../domain/types.ts';
import type { CheckAccepted, WriteOptions } from '../api.ts';
import { runCheck } from '../check.ts';
import type { Ctx } from '../context.ts';
import { deploymentByRef } from '../queries.ts';
import { allowed, checkVersion } from './guards.ts';

export class Checks {
  /** Deployments whose check is running in this process. */
  private running = new Set<string>();

  constructor(private readonly ctx: Ctx) {}

  async start(ref: string, actor: Actor, w?: WriteOptions): Promise<CheckAccepted> {
    const { ctx } = this;
    const dep = await deploymentByRef(ctx.store.db, ref);
    checkVersion(dep, w);
    const plan = findPlan(ctx.config, dep.plan);
    allowed(decideCheck(dep.state as DeploymentState, Boolean(plan?.check)));
    if (this.running.has(dep.id)) throw new LifelineError('INVALID_TRANSITION', 'a check is already running');
    this.running.add(dep.id);
    runCheck(ctx, dep, plan!, actor)
      .catch((err) =>
        ctx.log.error({ deployment: dep.id, err: (err as Error).message }, 'check failed to run'),
      )
      .finally(() => this.running.delete(dep.id));
    return { deployment_id: dep.id, status: 'accepted' };
  }
}
