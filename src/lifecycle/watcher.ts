// Watches the attempts this instance owns: launches their supervisors, notices the start, tails
// output, enforces timeout and cancel, and ends the attempt from its exit record. Event-driven: an
// attempt is looked at when something happens to it (its supervisor exits, its run dir changes, a
// deadline or cancel-grace timer fires, a cancel is asked) and on the slow safety pass (reconcile,
// every reap interval). Idle attempts cost nothing in between. The parts live in watch/: the rounds
// (scheduler), the run-dir watches and timers (watches), launching (launch), liveness and the start
// deadline (liveness), signals (signals), output (output), the verifying check (verify), ends (ends),
// and one look at an attempt (step); whether this instance may act at all is watch/may-act.ts.
import type { Launcher } from '../runner/launcher.ts';
import type { Ctx } from './context.ts';
import type { Host } from './watch/host.ts';
import { launch, type LaunchSpec } from './watch/launch.ts';
import { Scheduler } from './watch/scheduler.ts';
import { step } from './watch/step.ts';
import { Watches } from './watch/watches.ts';

export type { LaunchSpec } from './watch/launch.ts';

export class Watcher {
  /** Attempts accepted by this instance whose supervisor is being started: a cancel must wait for them. */
  private launching = new Set<string>();
  private closed = false;
  private readonly watches: Watches;
  private readonly scheduler: Scheduler;
  private readonly host: Host;

  constructor(ctx: Ctx, launcher: Launcher) {
    this.watches = new Watches({
      wake: (id) => this.wake(id),
      wakeOutput: (id) => this.scheduler.wakeOutput(id),
    });
    this.scheduler = new Scheduler(ctx, {
      has: (id) => this.watches.has(id),
      ids: () => this.watches.ids(),
      step: (id, row) => step(this.host, id, row),
    });
    this.host = {
      ctx,
      launcher,
      watches: this.watches,
      wake: (id) => this.wake(id),
      again: (id) => this.scheduler.again(id),
      moreOutput: (id) => this.scheduler.moreOutput(id),
    };
  }

  start(): void {
    this.wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watches.close();
    await this.scheduler.close();
  }

  isWatched(id: string): boolean {
    return this.watches.has(id) || this.launching.has(id);
  }

  expect(id: string): void {
    this.launching.add(id);
  }

  forget(id: string): void {
    this.launching.delete(id);
  }

  adopt(id: string, dir?: string | null): void {
    if (this.watches.has(id)) return;
    this.watches.add(id, true, dir ?? null);
    this.wake(id);
  }

  /** Starts the supervisor of a freshly accepted attempt. The process outlives this server. */
  async launch(spec: LaunchSpec): Promise<void> {
    try {
      await launch(this.host, spec);
    } finally {
      this.launching.delete(spec.attempt.id);
      this.wake(spec.attempt.id);
    }
  }

  /**
   * Looks at one attempt soon (a state may have changed), ahead of everything else; or at every
   * watched one (the safety pass), after any such state change.
   */
  wake(id?: string): void {
    if (this.closed) return;
    this.scheduler.wake(id);
  }

  /**
   * Resolves once every attempt watched at the call has been looked at since, and every state change
   * seen has been recorded (an output backlog may remain: it is worked off in later rounds).
   */
  settle(): Promise<void> {
    return this.scheduler.settle();
  }
}
