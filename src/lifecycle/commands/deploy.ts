// The deploy command: a deploy attempt with the deployment's params, overridden by the request's.
import { decideDeploy } from '../../domain/transitions.ts';
import type { Actor, Attempt, DeploymentState } from '../../domain/types.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { asParams, checkParams } from '../validate.ts';
import type { Watcher } from '../watcher.ts';
import { startAttempt } from './attempt.ts';
import { callerOf } from './guards.ts';

export async function startDeploy(
  ctx: Ctx,
  watcher: Watcher,
  ref: string,
  input: { params?: unknown; force?: boolean },
  actor: Actor,
  w?: WriteOptions,
): Promise<Attempt> {
  const override = asParams(input.params, 'params');
  const force = input.force === true;
  return startAttempt(ctx, watcher, 'deploy', { ref, actor, w, force }, (dep, plan) => {
    const params = { ...JSON.parse(dep.params), ...override };
    checkParams(plan, params);
    return { decision: decideDeploy(dep.state as DeploymentState, force, callerOf(actor)), params };
  });
}
