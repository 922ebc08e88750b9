// The configured webhooks of this instance (SPEC §10): a worker each, their health for
// GET /v1/webhooks, redelivery, and the lag gauge for /metrics. Never exposes a secret.
import { Gauge, type Registry } from 'prom-client';
import { LifelineError } from '../../domain/errors.ts';
import { lastSeq } from '../../store/stats.ts';
import { countPending, ensureWebhooks, rewindCursor, selectWebhooks } from '../../store/webhooks.ts';
import type { WebhookStatus } from '../api.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { WebhookWorker } from './worker.ts';

/** The URL as shown: any user:password in it masked. */
export function shownUrl(url: string): string {
  const u = new URL(url);
  if (u.username || u.password) {
    u.username = '***';
    u.password = '';
  }
  return u.toString();
}

export class Webhooks {
  private workers: WebhookWorker[] = [];

  constructor(private readonly ctx: Ctx) {}

  async start(): Promise<void> {
    const hooks = this.ctx.config.webhooks;
    if (hooks.length === 0) return;
    await ensureWebhooks(
      this.ctx.store.db,
      hooks.map((h) => h.name),
      await lastSeq(this.ctx.store.db),
      nowIso(),
    );
    this.workers = hooks.map((h) => new WebhookWorker(this.ctx, h));
    for (const w of this.workers) w.start();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }

  async list(): Promise<{ items: WebhookStatus[] }> {
    const { db } = this.ctx.store;
    const rows = new Map((await selectWebhooks(db)).map((r) => [r.name, r]));
    const items: WebhookStatus[] = [];
    for (const h of this.ctx.config.webhooks) {
      const r = rows.get(h.name);
      const delivered = r ? Number(r.delivered_seq) : 0;
      items.push({
        name: h.name,
        url: shownUrl(h.url),
        events: [...h.events],
        enabled: r ? r.enabled === 1 : true,
        delivered_seq: delivered,
        pending: await countPending(db, delivered, h.events),
        last_status: r?.last_status ?? null,
        last_error: r?.last_error ?? null,
        next_attempt_at: r?.next_attempt_at ?? null,
      });
    }
    return { items };
  }

  async redeliver(name: string, fromSeq: number): Promise<WebhookStatus> {
    const { db } = this.ctx.store;
    if (!this.ctx.config.webhooks.some((h) => h.name === name)) {
      throw new LifelineError('NOT_FOUND', `webhook ${name} is not configured`);
    }
    const last = await lastSeq(db);
    if (fromSeq > last + 1) {
      throw new LifelineError('VALIDATION', `from_seq is past the last seq (${last})`, [
        { field: 'from_seq', reason: `must be at most ${last + 1}` },
      ]);
    }
    if (!(await rewindCursor(db, name, fromSeq, nowIso()))) {
      throw new LifelineError('NOT_FOUND', `webhook ${name} has not started yet`);
    }
    for (const w of this.workers) w.poke();
    return (await this.list()).items.find((i) => i.name === name)!;
  }

  /** `lifeline_webhook_lag_events{webhook}`: events written after the webhook's cursor. */
  register(registry: Registry): void {
    const self = this;
    new Gauge({
      name: 'lifeline_webhook_lag_events',
      help: 'Events written after the webhook cursor (selected or not): how far delivery is behind',
      labelNames: ['webhook'],
      registers: [registry],
      async collect() {
        this.reset();
        if (self.ctx.config.webhooks.length === 0) return;
        const last = await lastSeq(self.ctx.store.db);
        const rows = new Map((await selectWebhooks(self.ctx.store.db)).map((r) => [r.name, r]));
        for (const h of self.ctx.config.webhooks) {
          const r = rows.get(h.name);
          this.set({ webhook: h.name }, r ? Math.max(0, last - Number(r.delivered_seq)) : 0);
        }
      },
    });
  }
}
