// Drift rules (SPEC §14.2): check slots and their jitter, what a verdict does to a ready deployment,
// when a self-heal is scheduled, and the fold of drift from the events.
import { describe, expect, it } from 'vitest';
import {
  checkOffsetMs,
  clearedEvent,
  decideDrift,
  decideHeal,
  foldDrift,
  healMayStart,
  nextCheckMs,
  type Drift,
} from '../../src/domain/drift.ts';
import { retryCapMs } from '../../src/domain/retry.ts';
import { DEPLOYMENT_STATES } from '../../src/domain/types.ts';

const ctx = { deploymentId: 'dep_1', at: '2026-01-01T00:00:10.000Z', actor: 'schedule' };
const drifted: Drift = { since: '2026-01-01T00:00:00.000Z', verdict: 'absent' };

describe('check slots', () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `dep_${(i * 7919).toString(36)}x${i}`);

  it('the next slot is within one interval after now, never at or before it', () => {
    const every = 60_000;
    for (const id of ids.slice(0, 200)) {
      for (const now of [0, 1, 59_999, 1_700_000_000_123, 1_700_000_060_000]) {
        const next = nextCheckMs(id, every, now);
        expect(next).toBeGreaterThan(now);
        expect(next - now).toBeLessThanOrEqual(every);
        // Always the deployment's own offset within the interval.
        expect(((next % every) + every) % every).toBe(checkOffsetMs(id, every));
      }
    }
  });

  it('successive slots are exactly one interval apart', () => {
    const every = 15 * 60_000;
    const first = nextCheckMs('dep_a', every, 1_700_000_000_000);
    expect(nextCheckMs('dep_a', every, first)).toBe(first + every);
  });

  it('offsets spread deployments over the interval (every tenth of it holds some)', () => {
    const every = 60_000;
    const buckets = new Array(10).fill(0);
    for (const id of ids) {
      const off = checkOffsetMs(id, every);
      expect(off).toBeGreaterThanOrEqual(0);
      expect(off).toBeLessThan(every);
      buckets[Math.floor(off / 6_000)]++;
    }
    // 2000 ids over 10 buckets: 200 each on average; a hash that bunched them would leave some near 0.
    for (const b of buckets) expect(b).toBeGreaterThan(120);
    expect(new Set(ids.map((id) => checkOffsetMs(id, every))).size).toBeGreaterThan(1900);
  });

  it('the offset of a deployment is the same every time (instances agree)', () => {
    expect(checkOffsetMs('dep_same', 60_000)).toBe(checkOffsetMs('dep_same', 60_000));
  });
});

describe('decideDrift', () => {
  it('absent or failed on a ready deployment starts drift with drift_detected', () => {
    for (const verdict of ['absent', 'failed'] as const) {
      const d = decideDrift('ready', null, verdict, ctx);
      expect(d.drift).toEqual({ since: ctx.at, verdict });
      expect(d.event).toEqual({
        type: 'drift_detected',
        deployment_id: 'dep_1',
        attempt_id: null,
        data: { since: ctx.at, verdict, actor: 'schedule' },
      });
    }
  });

  it('the same verdict again appends nothing', () => {
    expect(decideDrift('ready', drifted, 'absent', ctx)).toEqual({});
  });

  it('another failing verdict while drifted is appended again, keeping since', () => {
    const d = decideDrift('ready', drifted, 'failed', ctx);
    expect(d.drift).toEqual({ since: drifted.since, verdict: 'failed' });
    expect(d.event?.type).toBe('drift_detected');
    expect(d.event?.data).toMatchObject({ since: drifted.since, verdict: 'failed', previous: 'absent' });
  });

  it('up clears drift with drift_cleared, and is silent when there was none', () => {
    const d = decideDrift('ready', drifted, 'up', ctx);
    expect(d.drift).toBeNull();
    expect(d.event).toEqual(clearedEvent('dep_1', drifted, 'check', 'schedule'));
    expect(decideDrift('ready', null, 'up', ctx)).toEqual({});
  });

  it('no other state drifts (the verdict of an unknown deployment resolves it instead)', () => {
    for (const state of DEPLOYMENT_STATES.filter((s) => s !== 'ready')) {
      for (const verdict of ['up', 'absent', 'failed'] as const) {
        expect(decideDrift(state, null, verdict, ctx)).toEqual({});
      }
    }
  });
});

describe('self-heal', () => {
  const retry = { max: 3, backoffMs: 1_000, maxBackoffMs: 60_000 };
  const base = {
    selfHeal: true,
    retry,
    state: 'ready' as const,
    drift: drifted,
    healPending: false,
    healsToday: 0,
  };

  it('schedules the n-th heal of the day with the retry backoff (full jitter)', () => {
    for (const n of [0, 1, 2]) {
      const top = decideHeal({ ...base, healsToday: n }, 1)!;
      expect(top).toEqual({ number: n + 1, delayMs: retryCapMs(n + 1, retry) });
      expect(decideHeal({ ...base, healsToday: n }, 0)).toEqual({ number: n + 1, delayMs: 0 });
    }
  });

  it('at most retry.max a day', () => {
    expect(decideHeal({ ...base, healsToday: 3 }, 0.5)).toBeNull();
    expect(healMayStart('ready', drifted, 3, 3)).toBe(false);
    expect(healMayStart('ready', drifted, 2, 3)).toBe(true);
  });

  it('never from unknown nor any state but ready, never without drift, self_heal or a pending heal', () => {
    for (const state of DEPLOYMENT_STATES.filter((s) => s !== 'ready')) {
      expect(decideHeal({ ...base, state }, 0.5)).toBeNull();
      expect(healMayStart(state, drifted, 0, 3)).toBe(false);
    }
    expect(decideHeal({ ...base, drift: null }, 0.5)).toBeNull();
    expect(healMayStart('ready', null, 0, 3)).toBe(false);
    expect(decideHeal({ ...base, selfHeal: false }, 0.5)).toBeNull();
    expect(decideHeal({ ...base, retry: null }, 0.5)).toBeNull();
    expect(decideHeal({ ...base, healPending: true }, 0.5)).toBeNull();
  });
});

describe('foldDrift', () => {
  const detected = (since: string, verdict: string) => ({ type: 'drift_detected', data: { since, verdict } });
  const cleared = { type: 'drift_cleared', data: {} };
  const move = (to: string) => ({ type: 'state_transition', data: { entity: 'deployment', to } });

  it('no events: no drift', () => {
    expect(foldDrift([])).toBeNull();
  });

  it('detected, changed, cleared', () => {
    const events = [move('ready'), detected('t1', 'absent'), detected('t1', 'failed'), cleared];
    expect(foldDrift(events.slice(0, 2))).toEqual({ since: 't1', verdict: 'absent' });
    expect(foldDrift(events.slice(0, 3))).toEqual({ since: 't1', verdict: 'failed' });
    expect(foldDrift(events)).toBeNull();
  });

  it('a transition of the deployment or its delete ends drift; an attempt transition or a check_result does not', () => {
    const d = detected('t1', 'absent');
    expect(foldDrift([d, move('deploying')])).toBeNull();
    expect(foldDrift([d, { type: 'deployment_deleted', data: {} }])).toBeNull();
    expect(foldDrift([d, { type: 'state_transition', data: { entity: 'attempt', to: 'running' } }])).toEqual({
      since: 't1',
      verdict: 'absent',
    });
    expect(foldDrift([d, { type: 'check_result', data: { verdict: 'up' } }])).toEqual({
      since: 't1',
      verdict: 'absent',
    });
  });
});
