// Store outages seen by background work (watcher passes, reconcile, heartbeats, lost connections): an
// outage is logged once when it starts, then at most every `everyMs` with how many failures it had, and
// once when the store answers again. Errors that are not outages are logged as they come.
//
// "Answers again" needs evidence: a query the store completed after the last failure (the store's
// Kysely carries `plugin()`, which sees every completed query). A step that returned early without
// touching the store (a lapsed lease skips reconcile) says nothing about the store.
import type { KyselyPlugin } from 'kysely';
import type pino from 'pino';
import { isStoreUnavailable } from '../store/errors.ts';

export class OutageLog {
  private since: number | null = null;
  private failures = 0;
  private lastLogged = 0;
  /** Bumped by every outage failure; `answeredAt` is its value when the store last answered. */
  private failureSeq = 0;
  private answeredAt = -1;

  constructor(
    private log: pino.Logger,
    private everyMs = 10_000,
  ) {}

  get down(): boolean {
    return this.since !== null;
  }

  /** Reports a failed background step; `where` names the step. */
  failed(where: string, err: unknown, extra: Record<string, unknown> = {}): void {
    const message = (err as Error)?.message ?? String(err);
    if (!isStoreUnavailable(err)) {
      this.log.error({ ...extra, err: message }, `${where} failed`);
      return;
    }
    const now = Date.now();
    this.failures++;
    this.failureSeq++;
    if (this.since === null) {
      this.since = now;
      this.lastLogged = now;
      this.log.error({ err: message, where }, 'store unavailable; background work will retry');
    } else if (now - this.lastLogged >= this.everyMs) {
      this.lastLogged = now;
      this.log.error(
        { err: message, where, failures: this.failures, down_ms: now - this.since },
        'store still unavailable',
      );
    }
  }

  /** The store completed a query. */
  answered(): void {
    this.answeredAt = this.failureSeq;
  }

  /** A background step succeeded: ends an outage if there was one and the store answered since its last failure. */
  ok(): void {
    if (this.since === null || this.answeredAt !== this.failureSeq) return;
    this.log.info({ down_ms: Date.now() - this.since, failures: this.failures }, 'store available again');
    this.since = null;
    this.failures = 0;
  }

  /** For the store's Kysely: tells this log of every query the store completed. */
  plugin(): KyselyPlugin {
    return {
      transformQuery: (args) => args.node,
      transformResult: async (args) => {
        this.answered();
        return args.result;
      },
    };
  }
}
