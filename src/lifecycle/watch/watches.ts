// The attempts this instance watches and what it knows of each only in memory: signals sent, the
// supervisor it forked, the verifying check, and the run-dir watch (inotify) and timers that wake it.
import fs from 'node:fs';
import type { ProcessIdentity } from '../../runner/identity.ts';

/** Where inotify is unavailable (watch limit reached): how often an attempt is looked at anyway. */
const FALLBACK_POLL_MS = 1000;
/** Files whose change means a state change rather than more output. */
const RECORDS = new Set(['supervisor', 'process', 'exit']);

export interface Watch {
  /** Taken over after a restart or from a dead owner: its outcome is reported `recovered`. */
  recovered: boolean;
  /** Its deployment's plan, when this instance launched it (else read where needed). */
  plan: string | null;
  termSentAt: number | null;
  killSent: boolean;
  fsw: fs.FSWatcher | null;
  poll: NodeJS.Timeout | null;
  timer: NodeJS.Timeout | null;
  timerAt: number;
  /** Consecutive ingestion failures that were not store outages, and when one was last logged. */
  ingestFailures: number;
  ingestLoggedAt: number;
  /** The plan's descendants seen when it was signalled: a setsid'd one is outside its group. */
  family: ProcessIdentity[];
  /**
   * When this instance asked for the attempt's supervisor, until the launcher says it was forked (or
   * failed): no supervisor trace yet then means "not started yet", not "lost". 0 = not launching.
   */
  launchedAt: number;
  /**
   * The supervisor this instance forked, until the launcher reports its exit (0: none). While it
   * lives, no trace yet means it is still starting: 200 forked at once can take longer than the start
   * deadline to write their records on a busy machine.
   */
  launchedPid: number;
  /** The verifying check after exit 0 (SPEC §9.3); only in memory: lost with us, run again by recovery. */
  check: {
    stop: () => void;
    result: { rc: number | null; lines: string[] } | null;
    redact: (s: string) => string;
  } | null;
}

/** What wakes a watched attempt: a state change (records, timers) or more output. */
export interface Wakers {
  wake(id: string): void;
  wakeOutput(id: string): void;
}

export class Watches {
  private map = new Map<string, Watch>();
  private closed = false;

  constructor(private wakers: Wakers) {}

  get(id: string): Watch | undefined {
    return this.map.get(id);
  }

  has(id: string): boolean {
    return this.map.has(id);
  }

  ids(): IterableIterator<string> {
    return this.map.keys();
  }

  add(id: string, recovered: boolean, dir: string | null): Watch {
    const w: Watch = {
      recovered,
      plan: null,
      termSentAt: null,
      killSent: false,
      fsw: null,
      poll: null,
      timer: null,
      timerAt: 0,
      ingestFailures: 0,
      ingestLoggedAt: 0,
      family: [],
      launchedAt: 0,
      launchedPid: 0,
      check: null,
    };
    this.map.set(id, w);
    if (dir) this.listen(id, w, dir);
    return w;
  }

  /** inotify on the run dir: a record renamed into place or output appended wakes the attempt. */
  listen(id: string, w: Watch, dir: string): void {
    if (w.fsw || this.closed) return;
    try {
      w.fsw = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (name && RECORDS.has(String(name))) this.wakers.wake(id);
        else this.wakers.wakeOutput(id);
      });
      w.fsw.on('error', () => {
        w.fsw?.close();
        w.fsw = null;
        this.fallback(id, w);
      });
    } catch {
      this.fallback(id, w); // no dir yet, or no inotify watch left
    }
  }

  private fallback(id: string, w: Watch): void {
    if (w.poll || this.closed) return;
    w.poll = setInterval(() => this.wakers.wake(id), FALLBACK_POLL_MS);
    w.poll.unref();
  }

  /** Wakes one attempt at `at` (epoch ms); keeps only the earliest pending timer. */
  wakeAt(id: string, w: Watch, at: number): void {
    if (w.timer && w.timerAt <= at) return;
    if (w.timer) clearTimeout(w.timer);
    w.timerAt = at;
    w.timer = setTimeout(
      () => {
        w.timer = null;
        this.wakers.wake(id);
      },
      Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1),
    );
    w.timer.unref();
  }

  remove(id: string): void {
    const w = this.map.get(id);
    if (!w) return;
    w.fsw?.close();
    if (w.poll) clearInterval(w.poll);
    if (w.timer) clearTimeout(w.timer);
    w.check?.stop();
    this.map.delete(id);
  }

  close(): void {
    this.closed = true;
    for (const id of [...this.map.keys()]) this.remove(id);
  }
}
