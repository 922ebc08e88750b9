// What the lifecycle modules share (the store, the event bus, the config, who we are) and secret values.
import type pino from 'pino';
import type { LifelineConfig, PlanConfig } from '../config/types.ts';
import type { Store } from '../store/open.ts';
import type { Lease } from './lease.ts';
import type { OutageLog } from './outage.ts';
import type { EventBus } from './tx.ts';

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
}

/** The secret values of a params object: what must never leave the process unmasked. */
export function secretValues(plan: PlanConfig | undefined, params: Record<string, unknown>): string[] {
  if (!plan) return [];
  const out: string[] = [];
  for (const key of plan.secretParams) {
    const v = params[key];
    if (v === undefined || v === null) continue;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    if (s.length > 0) out.push(s);
  }
  return out;
}
