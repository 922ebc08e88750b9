// Lets attempts held by a freeze (SPEC §13.2) or by an answered approval (§13.3) go on. A freeze opens
// when it is lifted (this instance: at once, after the commit) or when it ends (a timer at the next
// change of the freezes in force, on the database's clock); the reconcile pass is the safety net for
// both, on every instance (a lift on another instance, a crash between an approval and its opening).
// Waiting attempts are looked at in queue order; whichever instance opens one launches it.
import { inForce, nextChange } from '../domain/freeze.ts';
import type { LifelineEvent } from '../domain/types.ts';
import { selectWaitingOn } from '../store/freezes.ts';
import { selectApprovedWaiting } from '../store/approvals.ts';
import { selectDbNow } from '../store/instances.ts';
import type { Ctx } from './context.ts';
import { allFreezes } from './freezes.ts';
import { reopen } from './gates/keeper.ts';
import type { Watcher } from './watcher.ts';
import { mayAct } from './watch/may-act.ts';

const MAX_TIMER_MS = 2_147_483_647;

export class FreezeWatch {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;
  /** Until the first pass, every freeze wait is looked at (the config may have changed over a restart). */
  private all = true;

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
  ) {}

  /** Something changed (a freeze made or lifted, the reconcile pass, the timer): look again. */
  wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = null));
  }

  /**
   * This instance's commits: a wait on a freeze was recorded. Its gate read the freezes before the
   * commit; a lift committed in between was looked at before this wait existed, so look again now
   * (whichever commits last, its instance's look sees both).
   */
  noteEvents(events: readonly LifelineEvent[]): void {
    if (events.some((e) => e.type === 'gate_waiting' && e.data.gate === 'freeze')) this.wake();
  }

  /** The reconcile pass: look now and wait for it. */
  async pass(): Promise<void> {
    this.wake();
    await this.idle();
  }

  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.idle();
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.look();
      } catch (err) {
        this.ctx.outage.failed('freezes', err);
      }
    } while (this.again && !this.closed);
  }

  private async look(): Promise<void> {
    if (!mayAct(this.ctx)) return;
    const db = this.ctx.store.db;
    const freezes = await allFreezes(this.ctx);
    const nowMs = await selectDbNow(db, this.ctx.store.dialect);
    const standing = new Set(freezes.filter((f) => inForce(f, nowMs)).map((f) => f.name));
    const waits = await selectWaitingOn(db, 'freeze');
    // One whose named freeze is still in force stays held: no transaction for it.
    const due = waits
      .filter((w) => this.all || !standing.has(String((JSON.parse(w.detail) as { freeze?: unknown }).freeze)))
      .map((w) => w.attempt_id);
    this.all = false;
    const approved = await selectApprovedWaiting(db);
    await reopen(this.ctx, this.watcher, [...due, ...approved]);
    this.arm(nextChange(freezes, nowMs), nowMs);
  }

  /** A timer for the next start or end of a freeze (database time `atMs`, read with `nowMs`). */
  private arm(atMs: number | null, nowMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (atMs === null || this.closed) return;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.wake();
      },
      Math.min(MAX_TIMER_MS, Math.max(0, atMs - nowMs)),
    );
    this.timer.unref();
  }
}
