// What the lifecycle modules share (the store, the event bus, the config, who we are) and secret values.
import type pino from 'pino';
import type { LifelineConfig, PlanConfig } from '../config/types.ts';
import type { CheckStarter } from '../runner/launcher-api.ts';
import type { Store } from '../store/open.ts';
import type { Lease } from './lease.ts';
import type { OutageLog } from './outage.ts';
import type { EventBus } from './event-bus.ts';

/** What the lifecycle modules share: the store, the event bus, the config and who we are. */
export interface Ctx {
  store: Store;
  bus: EventBus;
  config: LifelineConfig;
  instanceId: string;
  log: pino.Logger;
  /** Where background work reports store failures (rate-limited during an outage). */
  outage: OutageLog;
  /** This instance's lease: whether it may act on its attempts, and the epoch that fences its writes. */
  lease: Lease;
  /** Runs plans' checks (through the runner, so this process does not fork for each). */
  checks: CheckStarter;
  /** Told after a freeze was made or lifted through the API: the freeze gate looks again (SPEC §13.2). */
  freezesChanged?: () => void;
}

/**
 * The names of the secret params of a row: those stored with it when it was accepted (a JSON array,
 * null for rows from before they were stored) and those of its plan in the current config, if any.
 * So removing or renaming a plan never unmasks its deployments' secrets.
 */
export function secretNames(plan: PlanConfig | undefined, stored: string | null | undefined): string[] {
  const names = new Set(plan?.secretParams ?? []);
  if (stored) for (const n of JSON.parse(stored) as string[]) names.add(n);
  return [...names];
}

/** The secret values of a params object: what must never leave the process unmasked. */
export function secretValues(
  plan: PlanConfig | undefined,
  params: Record<string, unknown>,
  stored?: string | null,
): string[] {
  const out: string[] = [];
  for (const key of secretNames(plan, stored)) {
    const v = params[key];
    if (v === undefined || v === null) continue;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    if (s.length > 0) out.push(s);
  }
  return out;
}
