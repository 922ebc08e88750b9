// The one place that says whether this instance may act now: signal, time out, check or write about
// the attempts it owns. Asked before every step of the watcher and by every owner write, so nothing
// this instance does outlives its lease by more than the step it was already in.
import type { Ctx } from '../context.ts';

/** This instance holds its lease (SPEC §5): it may act on the attempts it owns. */
export function mayAct(ctx: Pick<Ctx, 'lease'>): boolean {
  return ctx.lease.live();
}
