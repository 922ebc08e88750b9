// What every write command checks before it writes: the domain's verdict, If-Match, the caller's role.
import { LifelineError } from '../../domain/errors.ts';
import type { Decision } from '../../domain/transitions.ts';
import type { Actor } from '../../domain/types.ts';
import type { DeploymentsTable } from '../../store/schema.ts';
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
