// What every write command checks before it writes: the domain's verdict, If-Match, the caller's role.
import { LifelineError } from '../../domain/errors.ts';
import type { Decision } from '../../domain/transitions.ts';
import type { Actor } from '../../domain/types.ts';
import { decideUnitWrite } from '../../domain/stack-state.ts';
import type { Kysely } from 'kysely';
import type { Database, DeploymentsTable } from '../../store/schema.ts';
import { selectUnitGuard } from '../../store/stacks.ts';
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
 * A direct write on a unit (deploy, teardown, rollback, resolve, delete) while its stack's run is active
 * is 409 STACK_RUN_IN_PROGRESS (SPEC §12.4), except from that run itself (`runId`). A standalone
 * deployment reads nothing more.
 */
export async function guardUnitWrite(
  db: Kysely<Database>,
  dep: DeploymentsTable,
  runId?: string,
): Promise<void> {
  if (!dep.stack_id) return;
  const stack = await selectUnitGuard(db, dep.stack_id);
  if (!stack || (runId !== undefined && stack.active_run_id === runId)) return;
  const d = decideUnitWrite(stack.name, stack.active_run_id);
  if (!d.ok) throw new LifelineError(d.refusal.code, d.refusal.detail);
}
