// `--follow` on an attempt waiting in a concurrency queue (SPEC §13.1): its place moves up when an attempt
// ahead leaves the queue (its slot granted, or it ended while waiting), and no event of its own says so.
// This follows the global stream for what can move a queue, from the attempt's own `gate_waiting` (nothing
// earlier can), and after each such event re-reads the attempt: the position it shows is the server's, read
// live, never counted here. Reads are coalesced: one at a time, one more if something came meanwhile.
import type { WaitingGate } from '../../domain/types.ts';
import type { ApiClient } from './api.ts';
import { followEvents } from './sse.ts';

export interface QueueWatchOptions {
  api: ApiClient;
  attemptId: string;
  /** The concurrency key it waits on. */
  key: string;
  /** The seq of its `gate_waiting`: the stream starts after it. */
  after: number;
  /** The attempt's gates as just read, while it is still queued. */
  onWaiting(waiting: WaitingGate[]): void;
}

export class QueueWatch {
  private readonly ac = new AbortController();
  private reading: Promise<void> | null = null;
  private again = false;
  readonly done: Promise<void>;

  constructor(private readonly opts: QueueWatchOptions) {
    this.refresh();
    this.done = followEvents({
      client: opts.api,
      path: '/v1/events/stream',
      query: { type: 'gate_opened,attempt_end' },
      after: opts.after,
      signal: this.ac.signal,
      onEvent: (e) => {
        if (e.attempt_id === opts.attemptId) return;
        const d = e.data as { gate?: unknown; detail?: { key?: unknown } };
        if (e.type === 'gate_opened' && (d.gate !== 'concurrency' || d.detail?.key !== opts.key)) return;
        this.refresh();
      },
      onStatus: (s) => {
        if (s.kind === 'connected' && !s.first) this.refresh(); // what moved while the stream was down
      },
    }).then(
      () => undefined,
      () => undefined, // the position is extra: the follow itself goes on without it
    );
  }

  private refresh(): void {
    if (this.ac.signal.aborted) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        try {
          const a = await this.opts.api.getAttempt(this.opts.attemptId);
          if (this.ac.signal.aborted) return;
          if (a.state === 'queued') this.opts.onWaiting(a.waiting ?? []);
        } catch {
          // a read that failed: the next event reads again
        }
      } while (this.again && !this.ac.signal.aborted);
    })().finally(() => (this.reading = null));
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.done;
    await this.reading;
  }
}
