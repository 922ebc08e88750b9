// One timer for the earliest due time of a schedule kept in the database (retries, scheduled checks,
// self-heals): due is judged on the database's clock only, so an instance whose own clock is off starts
// nothing early or late; this process's monotonic clock only times when to look again.

/** Longest a Node timer can wait; a later due time is re-armed by the passes before then. */
const MAX_TIMER_MS = 2_147_483_647;

export class DueTimer {
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  /** The database's clock minus this process's monotonic clock, as last read. */
  private offsetMs: number | null = null;
  private closed = false;

  /**
   * @param fire runs when the time comes (a pass, which reads the due rows and arms again)
   * @param minDelayMs the shortest wait: something still due after a pass is looked at again soon, not at once
   */
  constructor(
    private readonly fire: () => void,
    private readonly minDelayMs = 0,
  ) {}

  /** The database's now (ms) as a pass just read it. */
  setDbNow(nowMs: number): void {
    this.offsetMs = nowMs - performance.now();
  }

  /** Whether the database's clock was read yet (arming waits for it). */
  get ready(): boolean {
    return this.offsetMs !== null;
  }

  /** The database's clock as this process reckons it from the last reading (NaN before one). */
  dbNow(): number {
    return this.offsetMs === null ? Number.NaN : performance.now() + this.offsetMs;
  }

  /** Wakes up when the database's clock reaches `atMs` (early is harmless: the pass re-arms). */
  arm(atMs: number): void {
    if (this.closed || Number.isNaN(atMs) || this.offsetMs === null) return;
    if (this.timer && atMs >= this.armedAt) return; // an earlier wake-up will re-arm for this one
    if (this.timer) clearTimeout(this.timer);
    this.armedAt = atMs;
    const delay = Math.min(MAX_TIMER_MS, Math.max(this.minDelayMs, atMs - this.dbNow()));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedAt = Number.POSITIVE_INFINITY;
      this.fire();
    }, delay);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
