// The rollback command (SPEC §9.2): a deploy attempt with the params of the last succeeded deploy
// attempt before the current one, or of attempt `to`; refused like any deploy.
import { LifelineError } from '../../domain/errors.ts';
import { decideDeploy } from '../../domain/transitions.ts';
import type { Actor, Attempt, DeploymentState } from '../../domain/types.ts';
import { selectAttemptById, selectRollbackTarget } from '../../store/attempts.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { checkParams } from '../validate.ts';
import type { Watcher } from '../watcher.ts';
import { startAttempt } from './attempt.ts';
import { callerOf } from './guards.ts';

export async function rollback(
  ctx: Ctx,
  watcher: Watcher,
  ref: string,
  input: { to?: number; force?: boolean },
  actor: Actor,
  w?: WriteOptions,
): Promise<Attempt> {
  const force = input.force === true;
  return startAttempt(ctx, watcher, 'deploy', { ref, actor, w, force }, async (dep, plan, trx) => {
    const decision = decideDeploy(dep.state as DeploymentState, force, callerOf(actor));
    // The deploy guards speak first: a busy or unknown deployment is refused as such.
    if (!decision.ok) return { decision, params: {} };
    const target = await selectRollbackTarget(
      trx,
      dep.id,
      await targetQuery(trx, dep.current_attempt_id, input.to),
    );
    if (!target) {
      throw new LifelineError(
        'NO_ROLLBACK_TARGET',
        input.to === undefined
          ? `deployment ${dep.name} has no succeeded deploy attempt before its current one`
          : `attempt ${input.to} of ${dep.name} is not a succeeded deploy attempt`,
      );
    }
    const params = JSON.parse(target.params) as Record<string, unknown>;
    // The plan's schema may have changed since: the old params must still be valid to run.
    checkParams(plan, params);
    return { decision, params, rollbackOf: Number(target.number) };
  });
}

async function targetQuery(
  trx: Parameters<typeof selectAttemptById>[0],
  currentId: string | null,
  to: number | undefined,
): Promise<{ to: number } | { before: number }> {
  if (to !== undefined) return { to };
  const current = currentId ? await selectAttemptById(trx, currentId) : undefined;
  return { before: current ? Number(current.number) : Number.MAX_SAFE_INTEGER };
}
