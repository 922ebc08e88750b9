// The pure retry rules of SPEC §9.1: which ends schedule a retry, the count since the last success or
// operator action, exhaustion, and full jitter over a capped exponential backoff.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideRetry,
  retryCapMs,
  retryDelayMs,
  retryReason,
  type FailedAttempt,
  type RetryPolicy,
} from '../../src/domain/retry.ts';
import { decideCancel } from '../../src/domain/transitions.ts';
import { ATTEMPT_REASONS, ATTEMPT_STATES } from '../../src/domain/types.ts';

const policy: RetryPolicy = { max: 3, backoffMs: 30_000, maxBackoffMs: 600_000 };
const failed = (over: Partial<FailedAttempt> = {}): FailedAttempt => ({
  kind: 'deploy',
  state: 'failed',
  reason: 'exit_nonzero',
  retryNumber: null,
  deploymentFailed: true,
  ...over,
});

describe('decideRetry', () => {
  it('schedules retry 1 after an operator-started deploy fails with exit_nonzero or timeout', () => {
    for (const reason of ['exit_nonzero', 'timeout'] as const) {
      expect(decideRetry(failed({ reason }), policy, 1)).toEqual({
        kind: 'schedule',
        number: 1,
        of: 3,
        delayMs: 30_000,
      });
    }
  });

  it('counts on from the failed retry, and is exhausted after max', () => {
    expect(decideRetry(failed({ retryNumber: 1 }), policy, 1)).toMatchObject({ kind: 'schedule', number: 2 });
    expect(decideRetry(failed({ retryNumber: 2 }), policy, 1)).toMatchObject({ kind: 'schedule', number: 3 });
    expect(decideRetry(failed({ retryNumber: 3 }), policy, 0.5)).toEqual({
      kind: 'exhausted',
      number: 3,
      of: 3,
    });
    // The config lowered max since: exhausted at once, reporting the retries that ran.
    expect(decideRetry(failed({ retryNumber: 5 }), policy, 0.5)).toEqual({
      kind: 'exhausted',
      number: 5,
      of: 3,
    });
  });

  it('never retries without a policy, a teardown, a stale attempt, or any other end', () => {
    expect(decideRetry(failed(), null, 0.5)).toEqual({ kind: 'none' });
    expect(decideRetry(failed({ kind: 'teardown' }), policy, 0.5)).toEqual({ kind: 'none' });
    expect(decideRetry(failed({ deploymentFailed: false }), policy, 0.5)).toEqual({ kind: 'none' });
    for (const reason of ATTEMPT_REASONS.filter((r) => r !== 'exit_nonzero' && r !== 'timeout')) {
      expect(decideRetry(failed({ reason }), policy, 0.5), reason).toEqual({ kind: 'none' });
    }
    for (const state of ATTEMPT_STATES.filter((s) => s !== 'failed')) {
      expect(decideRetry(failed({ state }), policy, 0.5), state).toEqual({ kind: 'none' });
    }
    expect(decideRetry(failed({ reason: null }), policy, 0.5)).toEqual({ kind: 'none' });
  });

  it('an exhausted chain is never scheduled again from a retry (exhaustion only after a retry failed)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 25 }), (max, done) => {
        const d = decideRetry(failed({ retryNumber: done === 0 ? null : done }), { ...policy, max }, 0.3);
        if (done < max) expect(d).toMatchObject({ kind: 'schedule', number: done + 1, of: max });
        else expect(d).toMatchObject({ kind: 'exhausted', number: done, of: max });
      }),
    );
  });
});

describe('backoff with full jitter', () => {
  it('caps double from backoff up to max_backoff', () => {
    expect([1, 2, 3, 4, 5, 6, 10, 2000].map((n) => retryCapMs(n, policy))).toEqual([
      30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000, 600_000,
    ]);
  });

  it('the delay is anywhere in [0, cap]: the random number scales it', () => {
    expect(retryDelayMs(2, policy, 0)).toBe(0);
    expect(retryDelayMs(2, policy, 0.5)).toBe(30_000);
    expect(retryDelayMs(2, policy, 0.999999)).toBeLessThanOrEqual(60_000);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
        fc.integer({ min: 1, max: 3_600_000 }),
        (n, r, backoff) => {
          const p = { max: 64, backoffMs: backoff, maxBackoffMs: backoff * 7 };
          const d = retryDelayMs(n, p, r);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(retryCapMs(n, p));
        },
      ),
    );
  });

  it('is jittered: many draws spread over the cap instead of sitting on it', () => {
    const draws = Array.from({ length: 2000 }, () => retryDelayMs(3, policy, Math.random()));
    const cap = retryCapMs(3, policy);
    const below = draws.filter((d) => d < cap / 2).length;
    // Uniform over [0, cap]: about half fall below the middle (bounds ~10 standard deviations wide).
    expect(below).toBeGreaterThan(750);
    expect(below).toBeLessThan(1250);
    expect(new Set(draws).size).toBeGreaterThan(1000);
  });

  it('names the retry in the transition reason', () => {
    expect(retryReason(2, 3)).toBe('retry 2/3');
  });
});

describe('decideCancel with a retry waiting', () => {
  it('cancels the retry when nothing is in flight, else keeps its ordinary answers', () => {
    expect(decideCancel(null, false, true)).toEqual({ ok: true, action: 'cancel_retry' });
    expect(decideCancel({ state: 'failed', cancelRequested: false }, true, true)).toEqual({
      ok: true,
      action: 'cancel_retry',
    });
    expect(decideCancel({ state: 'failed', cancelRequested: false }, true, false)).toMatchObject({
      ok: false,
      refusal: { code: 'NO_INFLIGHT_ATTEMPT' },
    });
    expect(decideCancel({ state: 'running', cancelRequested: false }, true, true)).toEqual({
      ok: true,
      action: 'request',
    });
  });
});
