// The request id (trace_id) of the HTTP request a write runs for, carried through async calls so that
// the state-change log lines of that write name the request that caused them.
import { AsyncLocalStorage } from 'node:async_hooks';
import type pino from 'pino';
import type { LifelineEvent } from '../domain/types.ts';

export const traceIds = new AsyncLocalStorage<string>();

/** One log line per committed state transition: deployment and attempt ids, from → to, and the trace_id. */
export function logTransitions(log: pino.Logger, events: LifelineEvent[]): void {
  const traceId = traceIds.getStore();
  for (const e of events) {
    if (e.type !== 'state_transition') continue;
    const d = e.data as {
      entity?: string;
      from?: string | null;
      to?: string;
      trigger?: string;
      reason?: string | null;
      actor?: string;
    };
    log.info(
      {
        ...(traceId ? { trace_id: traceId } : {}),
        seq: e.seq,
        entity: d.entity,
        deployment: e.deployment_id,
        attempt: e.attempt_id,
        from: d.from ?? null,
        to: d.to,
        trigger: d.trigger,
        reason: d.reason ?? null,
        actor: d.actor,
      },
      'state change',
    );
  }
}
