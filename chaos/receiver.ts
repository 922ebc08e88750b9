// The chaos run's webhook receiver: every instance delivers to it. Each request's Standard Webhooks
// signature is verified, and each answer is recorded in arrival order (seq, valid, status). It
// answers 503 to a seeded few, so the deliverers back off (a backoff on the database's clock, which a
// skewed instance must wait out like the others). verify.ts judges the record against the event log.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { Random } from './random.ts';

/** The event types delivered: no log lines (too many), everything an operator would follow. */
export const HOOK_EVENTS = [
  'deployment_created',
  'state_transition',
  'attempt_start',
  'attempt_end',
  'cancel_requested',
  'timeout_reached',
  'retry_scheduled',
  'retry_cancelled',
  'retry_exhausted',
];

export interface Delivery {
  seq: number;
  type: string;
  /** Signature verified and `webhook-id` is `evt_<seq>`. */
  valid: boolean;
  status: number;
}

export interface HookEvent {
  seq: number;
  type: string;
  attempt_id: string | null;
  data: Record<string, unknown>;
}

export class Receiver {
  readonly secret = `whsec_${randomBytes(24).toString('base64')}`;
  readonly deliveries: Delivery[] = [];
  private server: http.Server | null = null;
  private url_ = '';
  private failing = true;

  /** `onEvent` sees each verified event answered 2xx, once per delivery. */
  constructor(
    private rng: Random,
    private onEvent: (e: HookEvent) => void,
  ) {}

  get url(): string {
    return this.url_;
  }

  /** Stops answering 503 (the settle: everything should arrive). */
  stopFailing(): void {
    this.failing = false;
  }

  /** The highest seq answered 2xx with a valid signature, or 0. */
  get high(): number {
    let h = 0;
    for (const d of this.deliveries) if (d.valid && d.status < 300 && d.seq > h) h = d.seq;
    return h;
  }

  async start(): Promise<void> {
    const hook = new Webhook(this.secret);
    this.server = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        let event: HookEvent | null = null;
        let valid = false;
        try {
          event = hook.verify(body, req.headers as Record<string, string>) as HookEvent;
          valid = req.headers['webhook-id'] === `evt_${event.seq}`;
        } catch {
          valid = false;
        }
        const status = this.failing && this.rng.chance(0.05) ? 503 : 204;
        this.deliveries.push({ seq: event?.seq ?? -1, type: event?.type ?? '?', valid, status });
        res.writeHead(status).end();
        if (valid && status < 300 && event) this.onEvent(event);
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url_ = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  close(): Promise<void> {
    const s = this.server;
    if (!s) return Promise.resolve();
    s.closeAllConnections();
    return new Promise((r) => s.close(() => r()));
  }
}
