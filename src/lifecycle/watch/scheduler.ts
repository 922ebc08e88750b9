// Schedules the watcher's work in rounds: up to BATCH woken attempts, one query per round, state
// changes (exit, start, timers, cancel) first, then the safety pass, then output; one step per
// attempt per turn and setImmediate between turns. A round of safety-pass or output work gives way
// as soon as a state change is woken, so neither a flooding attempt nor a pass over a thousand idle
// ones delays another's exit or cancel by more than one step. The
// lease is asked before every step (watch/may-act.ts).
import { selectAttemptsByIds } from '../../store/attempts.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import type { Ctx } from '../context.ts';
import { mayAct } from './may-act.ts';

/** Attempts looked at per round (one query each round). */
const BATCH = 64;
/** With the lease lapsed, how often pending work is looked at again (until re-registration wakes us). */
const LAPSED_RETRY_MS = 250;

export interface Stepper {
  /** Whether the attempt is watched (only watched ones are scheduled). */
  has(id: string): boolean;
  ids(): Iterable<string>;
  /** One look at one attempt, with its row as read at the start of the round. */
  step(id: string, row: AttemptsTable | undefined): Promise<void>;
}

export class Scheduler {
  /**
   * To look at, in this order: state changes (exit, start, timers, cancel), the safety pass (every
   * watched attempt, in case an event was missed), then output. Insertion-ordered.
   */
  private urgent = new Set<string>();
  private sweep = new Set<string>();
  private output = new Set<string>();
  private running: Promise<void> | null = null;
  private idle: (() => void)[] = [];
  private closed = false;
  private lapsedRetry: NodeJS.Timeout | null = null;

  constructor(
    private ctx: Ctx,
    private stepper: Stepper,
  ) {}

  async close(): Promise<void> {
    this.closed = true;
    if (this.lapsedRetry) clearTimeout(this.lapsedRetry);
    await this.running;
    for (const f of this.idle.splice(0)) f();
  }

  /**
   * Looks at one attempt soon (a state may have changed), ahead of everything else; or at every
   * watched one (the safety pass), after any such state change.
   */
  wake(id?: string): void {
    if (this.closed) return;
    if (id === undefined) {
      for (const k of this.stepper.ids()) if (!this.urgent.has(k)) this.sweep.add(k);
    } else if (this.stepper.has(id)) {
      this.urgent.add(id);
      this.sweep.delete(id);
    }
    this.schedule();
  }

  wakeOutput(id: string): void {
    if (this.closed || this.urgent.has(id)) return;
    this.output.add(id);
    this.schedule();
  }

  /** From inside a step: look at this attempt again in this run of rounds, first. */
  again(id: string): void {
    this.urgent.add(id);
  }

  /** From inside a step: more output to read, after the state changes. */
  moreOutput(id: string): void {
    this.output.add(id);
  }

  /**
   * Resolves once every attempt watched at the call has been looked at since, and every state change
   * seen has been recorded (an output backlog may remain: it is worked off in later rounds).
   */
  async settle(): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => this.idle.push(resolve));
    this.wake();
    await done;
  }

  /** Nothing woken is waiting but output: whoever waits for a settled watcher may go on. */
  private settled(): void {
    if (this.urgent.size === 0 && this.sweep.size === 0) for (const f of this.idle.splice(0)) f();
  }

  private schedule(): void {
    if (this.running || this.closed) return;
    this.settled();
    if (this.urgent.size === 0 && this.sweep.size === 0 && this.output.size === 0) return;
    // Lapsed lease: rounds() would return at once and this would run it again in a microtask loop that
    // starves the event loop (no HTTP, no heartbeat to re-register). Look again later instead.
    if (!mayAct(this.ctx)) {
      this.retryLater();
      return;
    }
    this.running = this.rounds().finally(() => {
      this.running = null;
      this.schedule();
    });
  }

  private retryLater(): void {
    this.lapsedRetry ??= setTimeout(() => {
      this.lapsedRetry = null;
      this.schedule();
    }, LAPSED_RETRY_MS);
    this.lapsedRetry.unref();
  }

  /** The next round: up to BATCH attempts, each with the set it was taken from (urgent first). */
  private take(): { id: string; from: Set<string> }[] {
    const round: { id: string; from: Set<string> }[] = [];
    const taken = new Set<string>();
    for (const set of [this.urgent, this.sweep, this.output]) {
      for (const id of set) {
        if (round.length >= BATCH) return round;
        set.delete(id);
        if (taken.has(id)) continue;
        taken.add(id);
        round.push({ id, from: set });
      }
    }
    return round;
  }

  private async rounds(): Promise<void> {
    while (!this.closed && (this.urgent.size > 0 || this.sweep.size > 0 || this.output.size > 0)) {
      // Lapsed: no signals, no writes until re-registered (re-registering reconciles, which wakes us).
      if (!mayAct(this.ctx)) return;
      const round = this.take();
      const ids = round.map((r) => r.id);
      let rows: Map<string, AttemptsTable>;
      try {
        rows = new Map((await selectAttemptsByIds(this.ctx.store.db, ids)).map((r) => [r.id, r]));
      } catch (err) {
        // The safety pass looks again; retrying here would spin while the store is down.
        this.ctx.outage.failed('watch round', err);
        continue;
      }
      let routine = 0; // safety-pass and output steps done this round
      for (let i = 0; i < round.length; i++) {
        const { id, from } = round[i];
        if (this.closed) return;
        // The lease is asked before every step: a round kept going by a flood must not carry this
        // instance past a lapse. A state change woken meanwhile goes first. Either way the rest of
        // this round goes back where it came from (at least one routine step per round, so a stream
        // of wakes cannot starve them).
        const lapsed = !mayAct(this.ctx);
        if (lapsed || (from !== this.urgent && routine > 0 && this.urgent.size > 0)) {
          for (const r of round.slice(i))
            if (this.stepper.has(r.id) && !this.urgent.has(r.id)) r.from.add(r.id);
          if (lapsed) return;
          break;
        }
        if (from !== this.urgent) routine++;
        try {
          await this.stepper.step(id, rows.get(id));
          this.ctx.outage.ok();
        } catch (err) {
          // The attempt keeps running; its output and exit record wait on disk for the next look.
          this.ctx.outage.failed('watch step', err, { attempt: id });
        }
        await new Promise((r) => setImmediate(r));
      }
      this.settled();
    }
  }
}
