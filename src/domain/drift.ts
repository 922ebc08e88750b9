// Drift (SPEC §14.2) as pure rules: when a deployment's scheduled check is due, what a check's verdict
// does to a ready deployment's drift, whether a self-heal deploy is scheduled, and the fold of drift
// from the events. No I/O, no clock: times and the jitter's random number are passed in.
import { retryDelayMs, type RetryPolicy } from './retry.ts';
import type { CheckVerdict } from './transitions.ts';
import type { DeploymentState, NewEvent } from './types.ts';

export type DriftVerdict = Exclude<CheckVerdict, 'up'>;

export interface Drift {
  since: string;
  verdict: DriftVerdict;
}

/** The actor of a self-heal deploy (and of its transitions). */
export const SELF_HEAL_ACTOR_NAME = 'self_heal';

/** Self-heals are counted over this window: at most `retry.max` in any 24 hours. */
export const HEAL_WINDOW_MS = 24 * 3_600_000;

/**
 * The deployment's offset within every interval: a hash of its id, so checks of many deployments
 * spread evenly over the interval and the same deployment keeps its place across instances.
 */
export function checkOffsetMs(deploymentId: string, intervalMs: number): number {
  // FNV-1a, 32 bits: cheap, stable, and well spread for ids that differ in a few characters.
  let h = 0x811c9dc5;
  for (let i = 0; i < deploymentId.length; i++) {
    h ^= deploymentId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % Math.max(1, Math.floor(intervalMs));
}

/**
 * The first slot of the deployment strictly after `afterMs`: slots are `k × interval + offset`. Never
 * more than one interval away, so a deployment is looked at at least once per interval.
 */
export function nextCheckMs(deploymentId: string, intervalMs: number, afterMs: number): number {
  const every = Math.max(1, Math.floor(intervalMs));
  const offset = checkOffsetMs(deploymentId, every);
  const k = Math.floor((afterMs - offset) / every) + 1;
  return k * every + offset;
}

/** How long past a check's deadline its claim is kept before another instance may take it over. */
export const CLAIM_MARGIN_MS = 30_000;

export interface DriftDecision {
  /** The drift the deployment holds after the verdict (undefined: unchanged). */
  drift?: Drift | null;
  /** `drift_detected` / `drift_cleared`, appended after the check_result. */
  event?: NewEvent;
}

/**
 * A verdict on a deployment: only a `ready` one can drift (the deploy did succeed; the state stays).
 * `absent`/`failed` starts drift (`drift_detected`); a different failing verdict while drifted is news
 * too and is appended again, keeping `since`; the same verdict again appends nothing. `up` clears it
 * (`drift_cleared`). On any other state the verdict leaves drift alone (unknown: the check resolves it).
 */
export function decideDrift(
  state: DeploymentState,
  drift: Drift | null,
  verdict: CheckVerdict,
  ctx: { deploymentId: string; at: string; actor: string },
): DriftDecision {
  if (state !== 'ready') return {};
  if (verdict === 'up') {
    if (!drift) return {};
    return { drift: null, event: clearedEvent(ctx.deploymentId, drift, 'check', ctx.actor) };
  }
  if (drift && drift.verdict === verdict) return {};
  const next: Drift = { since: drift?.since ?? ctx.at, verdict };
  const data: Record<string, unknown> = { since: next.since, verdict, actor: ctx.actor };
  if (drift) data.previous = drift.verdict;
  return {
    drift: next,
    event: { type: 'drift_detected', deployment_id: ctx.deploymentId, attempt_id: null, data },
  };
}

/** Why drift ended: a check said `up`, or an attempt changed the world on purpose. */
export type DriftClearedBy = 'check' | 'deploy' | 'teardown' | 'delete';

export function clearedEvent(
  deploymentId: string,
  drift: Drift,
  by: DriftClearedBy,
  actor: string,
): NewEvent {
  return {
    type: 'drift_cleared',
    deployment_id: deploymentId,
    attempt_id: null,
    data: { since: drift.since, verdict: drift.verdict, by, actor },
  };
}

/** The drift a row holds, or null. */
export function driftOf(since: string | null | undefined, verdict: string | null | undefined): Drift | null {
  if (since == null || (verdict !== 'absent' && verdict !== 'failed')) return null;
  return { since, verdict };
}

export interface HealFacts {
  selfHeal: boolean;
  retry: RetryPolicy | null;
  state: DeploymentState;
  /** The drift after the verdict. */
  drift: Drift | null;
  /** A self-heal already waits. */
  healPending: boolean;
  /** Self-heal deploys started in the last 24 hours (read from the database). */
  healsToday: number;
}

/**
 * Whether a drifted deployment gets a self-heal deploy, and after how long: the retry backoff of the
 * n-th heal of the day (full jitter), at most `retry.max` a day, only from `ready` (never `unknown`).
 */
export function decideHeal(f: HealFacts, random: number): { delayMs: number; number: number } | null {
  if (!f.selfHeal || !f.retry || f.state !== 'ready' || !f.drift || f.healPending) return null;
  const n = f.healsToday + 1;
  if (n > f.retry.max) return null;
  return { delayMs: retryDelayMs(n, f.retry, random), number: n };
}

/** May the waiting self-heal start now? Only on a ready, still drifted deployment, within the day's cap. */
export function healMayStart(
  state: DeploymentState,
  drift: Drift | null,
  healsToday: number,
  max: number,
): boolean {
  return state === 'ready' && drift !== null && healsToday < max;
}

/**
 * Folds a deployment's events (seq order) into its drift: `drift_detected` sets it (its `since` and
 * verdict), `drift_cleared` ends it, and so does any transition of the deployment (drift lives only
 * within one stay in `ready`; the writes that move a drifted deployment append `drift_cleared` too).
 */
export function foldDrift(events: { type: string; data: Record<string, unknown> }[]): Drift | null {
  let drift: Drift | null = null;
  for (const e of events) {
    if (e.type === 'drift_detected') drift = driftOf(e.data.since as string, e.data.verdict as string);
    else if (e.type === 'drift_cleared' || e.type === 'deployment_deleted') drift = null;
    else if (e.type === 'state_transition' && e.data.entity === 'deployment') drift = null;
  }
  return drift;
}
