// The teardown command: a teardown attempt, confirmed by repeating the deployment's name.
import { decideTeardown } from '../../domain/transitions.ts';
import type { Actor, Attempt, DeploymentState } from '../../domain/types.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { checkConfirm } from '../validate.ts';
import type { Watcher } from '../watcher.ts';
import { startAttempt } from './attempt.ts';
import { callerOf } from './guards.ts';

export async function teardown(
  ctx: Ctx,
  watcher: Watcher,
  ref: string,
  input: { confirm?: string; force?: boolean },
  actor: Actor,
  w?: WriteOptions,
): Promise<Attempt> {
  checkConfirm(input.confirm);
  const force = input.force === true;
  const confirm = input.confirm ?? '';
  return startAttempt(ctx, watcher, 'teardown', { ref, actor, w, force }, (dep) => ({
    decision: decideTeardown(
      dep.state as DeploymentState,
      { name: dep.name, confirm, force },
      callerOf(actor),
    ),
    params: JSON.parse(dep.params),
  }));
}
