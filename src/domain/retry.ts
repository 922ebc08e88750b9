// Automatic retry of failed deploys (SPEC §9.1), as pure rules: whether a failed attempt schedules a
// retry, which one it is, and its delay. No I/O, no clock; the jitter's random number is passed in.
import type { AttemptKind, AttemptReason, AttemptState } from './types.ts';

export interface RetryPolicy {
  /** Retries allowed since the last success or operator action (≥ 1). */
  max: number;
  backoffMs: number;
  maxBackoffMs: number;
}

/** The ends that may be transient: never a cancel, a runner error, a lost or an unverified outcome. */
export const RETRIED_REASONS: readonly AttemptReason[] = ['exit_nonzero', 'timeout'];

export interface FailedAttempt {
  kind: AttemptKind;
  /** The attempt's state after this end. */
  state: AttemptState;
  reason: AttemptReason | null;
  /** Which retry the failed attempt itself was; null when an operator (or anyone else) started it. */
  retryNumber: number | null;
  /** The end moved the deployment to `failed` (only a current attempt's end does). */
  deploymentFailed: boolean;
}

export type RetryDecision =
  | { kind: 'none' }
  | { kind: 'schedule'; number: number; of: number; delayMs: number }
  | { kind: 'exhausted'; number: number; of: number };

export function retryApplies(a: FailedAttempt): boolean {
  return (
    a.kind === 'deploy' &&
    a.state === 'failed' &&
    a.deploymentFailed &&
    a.reason !== null &&
    RETRIED_REASONS.includes(a.reason)
  );
}

/** The cap of retry n's delay: backoff × 2^(n−1), at most max_backoff. */
export function retryCapMs(n: number, policy: RetryPolicy): number {
  return Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (n - 1));
}

/** Full jitter: uniformly anywhere in [0, cap], so instances retrying together spread out. */
export function retryDelayMs(n: number, policy: RetryPolicy, random: number): number {
  const r = Math.min(Math.max(random, 0), 1);
  return Math.round(r * retryCapMs(n, policy));
}

/**
 * What a failed attempt's end schedules. The count runs since the last success or operator action:
 * an attempt a retry started carries its number, and any other attempt starts the count again.
 */
export function decideRetry(a: FailedAttempt, policy: RetryPolicy | null, random: number): RetryDecision {
  if (!policy || !retryApplies(a)) return { kind: 'none' };
  const n = (a.retryNumber ?? 0) + 1;
  if (n > policy.max) return { kind: 'exhausted', number: n - 1, of: policy.max };
  return { kind: 'schedule', number: n, of: policy.max, delayMs: retryDelayMs(n, policy, random) };
}

/** The deployment transition's reason when a retry starts: `retry 2/3`. */
export function retryReason(number: number, of: number): string {
  return `retry ${number}/${of}`;
}
