// Delivers one webhook from its durable cursor (SPEC §10), on whichever instance holds its lease.
// Each step reads a batch outside any transaction, delivers the selected events one at a time in seq
// order, and moves the cursor after each 2xx in its own short compare-and-set: a slow receiver holds
// no transaction, and a crash between the answer and the write means a redelivery, never a skip.
// The lease and the backoff are on the database's clock; this instance's clock only times its sleeps.
import type { WebhookConfig } from '../../config/webhooks.ts';
import {
  advanceCursor,
  claimLease,
  recordFailure,
  releaseLease,
  selectEventsAfter,
  selectWebhookAt,
} from '../../store/webhooks.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { backoffMs, deliver } from './deliver.ts';

const BATCH = 200;
/** How often an idle worker looks for events other instances wrote (its own commits wake it at once). */
const IDLE_MS = 1000;

export class WebhookWorker {
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly stop = new AbortController();
  private loop: Promise<void> | null = null;
  private unsubscribe: () => void = () => undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly hook: WebhookConfig,
  ) {}

  start(): void {
    this.unsubscribe = this.ctx.bus.on(() => this.poke());
    this.loop = this.run();
  }

  /** Ends the loop (an in-flight delivery is abandoned: it is retried from the cursor) and frees the lease. */
  async close(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.stop.abort();
    this.poke();
    await this.loop;
    await releaseLease(this.ctx.store.db, this.hook.name, this.ctx.instanceId).catch(() => undefined);
  }

  poke(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let wait = IDLE_MS;
      try {
        wait = await this.step();
      } catch (err) {
        this.ctx.log.warn({ webhook: this.hook.name, err: (err as Error).message }, 'webhook step failed');
      }
      if (!this.stopped && wait > 0) await this.sleep(wait);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** Holds the lease long enough for one delivery plus a lease TTL. */
  private hold(): Promise<boolean> {
    const holdMs = this.hook.timeoutMs + this.ctx.config.leaseTtlMs;
    return claimLease(this.ctx.store.db, this.hook.name, this.ctx.instanceId, holdMs);
  }

  /** One batch; returns how long to wait before the next. */
  private async step(): Promise<number> {
    const { db } = this.ctx.store;
    const { name } = this.hook;
    const me = this.ctx.instanceId;
    let read = await selectWebhookAt(db, name);
    if (!read) return IDLE_MS;
    // An idle worker holding a fresh lease reads only: no write per poll.
    const fresh =
      read.row.lease_owner === me &&
      read.row.lease_until !== null &&
      Date.parse(read.row.lease_until) - read.nowMs > this.ctx.config.leaseTtlMs / 2;
    if (!fresh) {
      if (!(await this.hold())) return this.ctx.config.leaseTtlMs / 3; // another instance delivers it
      read = await selectWebhookAt(db, name);
      if (!read) return IDLE_MS;
    }
    const { row, nowMs } = read;
    if (!row.enabled) return IDLE_MS;
    if (row.next_attempt_at && Date.parse(row.next_attempt_at) > nowMs) {
      return Math.min(IDLE_MS, Date.parse(row.next_attempt_at) - nowMs);
    }
    let cursor = Number(row.delivered_seq);
    let failures = Number(row.failures);
    const batch = await selectEventsAfter(db, cursor, BATCH);
    if (batch.length === 0) return IDLE_MS;
    for (const ev of batch) {
      if (this.stopped) return 0;
      if (!this.hook.events.includes(ev.type)) continue;
      if (!(await this.hold())) return 0;
      const r = await deliver(this.hook, ev, this.stop.signal);
      if (this.stopped && !r.ok) return 0;
      if (r.ok) {
        // Everything between the old cursor and this event was not selected: it moves past too.
        if (!(await advanceCursor(db, name, me, cursor, ev.seq, r.status, nowIso()))) return 0;
        cursor = ev.seq;
        failures = 0;
        continue;
      }
      failures += 1;
      const disable = r.status === 410;
      const wait = disable ? 0 : backoffMs(failures);
      await recordFailure(
        db,
        name,
        me,
        {
          status: r.status,
          error: r.error ?? 'failed',
          failures,
          retryInMs: disable ? null : wait,
          disable,
        },
        nowIso(),
      );
      this.ctx.log.warn(
        {
          webhook: name,
          seq: ev.seq,
          status: r.status,
          error: r.error,
          failures,
          retry_in_ms: disable ? null : wait,
        },
        disable ? 'webhook answered 410 Gone: disabled' : 'webhook delivery failed; will retry',
      );
      return disable ? IDLE_MS : Math.min(wait, IDLE_MS);
    }
    const last = batch[batch.length - 1].seq;
    if (last > cursor) await advanceCursor(db, name, me, cursor, last, null, nowIso());
    return batch.length === BATCH ? 0 : IDLE_MS;
  }
}
