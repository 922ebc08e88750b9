// This instance's lease (SPEC §5). Peers judge it on the database's clock; the instance itself counts
// it as held only until `lease_ttl` after it sent its last successful heartbeat, measured on its own
// monotonic clock. A heartbeat lands in the database after it was sent, so the instance always gives
// its lease up before any peer may consider it lapsed. A lapsed lease cannot be renewed: the instance
// stops acting on its attempts and re-registers under a new epoch, which fences the old one's writes.
// Heartbeats are single-flight: the next is timed from the end of the previous, so a slow database
// never has two renewals (or, after a lapse, two re-registrations bumping the epoch twice) in flight.
import { performance } from 'node:perf_hooks';
import type pino from 'pino';
import type { Store } from '../store/open.ts';
import { registerInstance, renewLease, selectInstance, type InstanceInfoRow } from '../store/instances.ts';

export type Beat = 'renewed' | 'reregistered';

/** Another server runs under this instance's id. Named StartupError so `serve` prints it plainly. */
export class IdentityInUse extends Error {
  constructor(id: string, other: { host: string; pid: number | null; data_dir: string } | undefined) {
    const where = other ? ` (pid ${other.pid ?? '?'} on ${other.host}, data dir ${other.data_dir})` : '';
    super(
      `instance ${id} is already running${where}: two servers would share one identity. Its ` +
        `instance.json was probably copied with a data dir; give this server a data dir of its own ` +
        `(without instance.json it starts as a new instance), or stop the other and wait one lease_ttl`,
    );
    this.name = 'StartupError';
  }
}

export class Lease {
  /** The epoch of the current registration (0 before the first). */
  epoch = 0;
  private heldUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly info: InstanceInfoRow,
    private readonly ttlMs: number,
    private readonly log: pino.Logger,
  ) {}

  get id(): string {
    return this.info.id;
  }

  /** Held: this instance may act on (signal, write about) the attempts it owns. */
  live(): boolean {
    return this.epoch > 0 && performance.now() < this.heldUntil;
  }

  /** Takes a new epoch; refused (IdentityInUse) while another server holds a live lease under this id. */
  async register(): Promise<void> {
    const sent = performance.now();
    const epoch = await registerInstance(this.store.db, this.store.dialect, this.info, this.ttlMs);
    if (epoch === null) {
      const other = await selectInstance(this.store.db, this.info.id);
      throw new IdentityInUse(this.info.id, other);
    }
    this.epoch = epoch;
    this.heldUntil = sent + this.ttlMs;
  }

  /** One heartbeat. Returns 'reregistered' when the lease had lapsed and a new epoch was taken. */
  async renew(): Promise<Beat> {
    const sent = performance.now();
    if (await renewLease(this.store.db, this.store.dialect, this.info.id, this.epoch, this.ttlMs)) {
      this.heldUntil = sent + this.ttlMs;
      return 'renewed';
    }
    this.log.warn(
      { instance: this.info.id, epoch: this.epoch },
      'lease lapsed; stopped acting on attempts and re-registering',
    );
    this.heldUntil = 0;
    await this.register();
    this.log.info({ instance: this.info.id, epoch: this.epoch }, 're-registered with a new lease epoch');
    return 'reregistered';
  }

  /** Time between the end of one heartbeat and the start of the next. */
  get intervalMs(): number {
    return Math.max(250, Math.floor(this.ttlMs / 3));
  }

  /**
   * Heartbeats until stopped, one at a time: `after` runs with each result (re-claiming after a
   * re-registration) before the next is scheduled; `onError` gets a failed one.
   */
  startHeartbeat(after: (beat: Beat) => Promise<void>, onError: (err: unknown) => void): void {
    const schedule = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.beating = this.renew()
          .then(after)
          .catch(onError)
          .finally(() => {
            this.beating = null;
            schedule();
          });
      }, this.intervalMs);
      this.timer.unref();
    };
    schedule();
  }

  /** Stops the heartbeats; resolves once the one in flight (if any) has settled. */
  async stopHeartbeat(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.beating;
  }

  /** The fence of an owner's writes: the attempt row must still say this owner and this epoch. */
  fence(): { owner: string; epoch: number } {
    return { owner: this.info.id, epoch: this.epoch };
  }
}
