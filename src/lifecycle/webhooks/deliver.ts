// One webhook delivery (SPEC §10): the event's JSON POSTed with the Standard Webhooks headers, signed by
// the `standardwebhooks` library; no redirect followed; a timeout on the whole exchange. The result
// never carries the secret, and errors are described without the URL (it may hold credentials).
import { Webhook } from 'standardwebhooks';
import type { WebhookConfig } from '../../config/webhooks.ts';
import type { LifelineEvent } from '../../domain/types.ts';

export interface DeliveryResult {
  ok: boolean;
  status: number | null;
  error: string | null;
}

export async function deliver(
  hook: WebhookConfig,
  event: LifelineEvent,
  stop: AbortSignal,
): Promise<DeliveryResult> {
  const body = JSON.stringify(event);
  const id = `evt_${event.seq}`;
  const at = new Date();
  const signature = new Webhook(hook.secret).sign(id, at, body);
  const timeout = AbortSignal.timeout(hook.timeoutMs);
  try {
    const res = await fetch(hook.url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.any([stop, timeout]),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Lifeline-Webhooks',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signature,
      },
      body,
    });
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, error: null };
    if (res.status >= 300 && res.status < 400) {
      return { ok: false, status: res.status, error: `answered ${res.status}; redirects are not followed` };
    }
    return { ok: false, status: res.status, error: `answered ${res.status}` };
  } catch (err) {
    if (timeout.aborted) return { ok: false, status: null, error: `no answer within ${hook.timeoutMs} ms` };
    if (stop.aborted) return { ok: false, status: null, error: 'stopped before an answer' };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return {
      ok: false,
      status: null,
      error: `not delivered: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    };
  }
}

/** Full jitter: a random wait up to 1 s doubling per consecutive failure, capped at 1 h. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const ceiling = Math.min(3_600_000, 1000 * 2 ** Math.min(failures - 1, 22));
  return Math.floor(random() * ceiling);
}
