// The `webhooks:` list of the config file (SPEC §10): its schema, and the secrets read from the
// environment at load. A secret is kept non-enumerable so that printing or serialising the config
// never shows it.
import { z } from 'zod';
import { EVENT_TYPES, type EventType } from '../domain/types.ts';
import { checkDuration } from './duration.ts';

export interface WebhookConfig {
  name: string;
  url: string;
  events: EventType[];
  timeoutMs: number;
  /** `whsec_` + base64 (Standard Webhooks). Non-enumerable: never in JSON.stringify(config). */
  readonly secret: string;
}

export const WEBHOOK_KEYS = ['name', 'url', 'secret_env', 'events', 'timeout'];
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_RE = /^whsec_[A-Za-z0-9+/]{22,}={0,2}$/;
const DEFAULT_TIMEOUT_MS = 10_000;
/** Every type but log_line (SPEC §10). */
export const DEFAULT_WEBHOOK_EVENTS: EventType[] = EVENT_TYPES.filter((t) => t !== 'log_line');

/**
 * Why a webhook URL is refused, or null. Credentials in the URL are refused: fetch will not send them,
 * and they would be shown wherever the URL is (status, logs). The message never quotes the URL.
 */
export function webhookUrlProblem(u: string): string | null {
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return 'expected an http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'expected an http:// or https:// URL';
  if (url.username !== '' || url.password !== '') {
    return 'must not contain credentials (user:password@): receivers verify the webhook signature instead';
  }
  return null;
}

export function webhooksSchema() {
  return z.array(
    z.strictObject({
      name: z.string().regex(NAME_RE, 'expected lower-case letters, digits, _ and - (at most 63)'),
      url: z.string().superRefine((u, zc) => {
        const problem = webhookUrlProblem(u);
        if (problem) zc.addIssue({ code: 'custom', message: problem });
      }),
      secret_env: z.string().regex(ENV_NAME_RE, 'expected the name of an environment variable'),
      events: z
        .array(z.enum(EVENT_TYPES, { error: `expected event types among ${EVENT_TYPES.join(', ')}` }))
        .min(1)
        .optional(),
      timeout: z
        .unknown()
        .transform((v, zc) => {
          const r = checkDuration(v);
          if ('reason' in r || r.ms <= 0) {
            zc.addIssue({ code: 'custom', message: 'reason' in r ? r.reason : 'must be longer than 0' });
            return z.NEVER;
          }
          return r.ms;
        })
        .optional(),
    }),
  );
}

type Parsed = z.output<ReturnType<typeof webhooksSchema>>;

/** Reads each secret from the environment; problems go to `add` (path, message), never quoting a value. */
export function resolveWebhooks(
  list: Parsed,
  env: NodeJS.ProcessEnv,
  add: (path: (string | number)[], message: string) => void,
): WebhookConfig[] {
  const out: WebhookConfig[] = [];
  list.forEach((w, i) => {
    if (list.findIndex((o) => o.name === w.name) < i) {
      add(['webhooks', i, 'name'], `duplicate webhook name "${w.name}"`);
      return;
    }
    const secret = env[w.secret_env];
    const at = ['webhooks', i, 'secret_env'];
    if (secret === undefined || secret === '') {
      add(at, `webhook "${w.name}": environment variable ${w.secret_env} is not set`);
      return;
    }
    if (!SECRET_RE.test(secret)) {
      add(
        at,
        `webhook "${w.name}": ${w.secret_env} must hold "whsec_" followed by base64 (Standard Webhooks)`,
      );
      return;
    }
    const hook = {
      name: w.name,
      url: w.url,
      events: w.events ?? DEFAULT_WEBHOOK_EVENTS,
      timeoutMs: w.timeout ?? DEFAULT_TIMEOUT_MS,
    };
    Object.defineProperty(hook, 'secret', { value: secret, enumerable: false });
    out.push(hook as WebhookConfig);
  });
  return out;
}
