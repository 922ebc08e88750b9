// What every write command checks before it writes: the domain's verdict, If-Match, the caller's role.
import { LifelineError } from '../../domain/errors.ts';
import type { Decision } from '../../domain/transitions.ts';
import type { Actor } from '../../domain/types.ts';
import type { Transaction } from 'kysely';
import { decideUnitWrite } from '../../domain/stack-state.ts';
import type { Database, DeploymentsTable } from '../../store/schema.ts';
import { lockStackRun } from '../../store/runs.ts';
import type { WriteOptions } from '../api.ts';

/** Throws the domain's refusal; past it the decision's writes are known. */
export function allowed(decision: Decision): asserts decision is Extract<Decision, { ok: true }> {
  if (!decision.ok) throw new LifelineError(decision.refusal.code, decision.refusal.detail);
}

export function callerOf(actor: Actor): { isAdmin: boolean } {
  return { isAdmin: actor.role === 'admin' };
}

export function checkVersion(dep: DeploymentsTable, w?: WriteOptions): void {
  if (w?.ifVersion !== undefined && Number(dep.version) !== w.ifVersion) {
    throw new LifelineError(
      'VERSION_MISMATCH',
      `deployment is at version ${dep.version}, not ${w.ifVersion}`,
    );
  }
}

/** The compare-and-set guard of a change to a deployment: the state and version just read. */
export function asRead(dep: DeploymentsTable): { id: string; expectState: string; expectVersion: number } {
  return { id: dep.id, expectState: dep.state, expectVersion: Number(dep.version) };
}

/**
 * SPEC §12.4: while its stack's run is active, a unit is written only by that run (`run`); a direct
 * deploy, teardown, rollback, resolve or delete is 409 STACK_RUN_IN_PROGRESS. Read in the write's own
 * transaction, so a run that starts after this read makes the write lose its race instead.
 */
export async function guardUnitWrite(
  trx: Transaction<Database>,
  stackId: string,
  run?: string,
): Promise<void> {
  const stack = await lockStackRun(trx, stackId);
  if (!stack || (run !== undefined && stack.active_run_id === run)) return;
  const decision = decideUnitWrite(stack.name, stack.active_run_id);
  if (!decision.ok) throw new LifelineError(decision.refusal.code, decision.refusal.detail);
}
