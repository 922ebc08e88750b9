// The plan's `retry: {max, backoff, max_backoff}` (SPEC §9.1): parsed as durations, validated, defaulted.
import { describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { errorOf } from './helpers.ts';

const plan = (retry: unknown) => ({
  plans: {
    demo: { deploy: ['./deploy.sh'], teardown: ['./teardown.sh'], ...(retry === undefined ? {} : { retry }) },
  },
});
const load = (retry: unknown) => configFromObject(plan(retry), { file: null, baseDir: '/tmp', env: {} });

describe('plan retry config', () => {
  it('is absent by default: no retry', () => {
    expect(load(undefined).plans.demo.retry).toBeNull();
  });

  it('reads max and durations like every other duration', () => {
    expect(load({ max: 3, backoff: '30s', max_backoff: '10m' }).plans.demo.retry).toEqual({
      max: 3,
      backoffMs: 30_000,
      maxBackoffMs: 600_000,
    });
    expect(load({ max: 1, backoff: 50 }).plans.demo.retry).toMatchObject({ backoffMs: 50 });
  });

  it('defaults max_backoff to 10 × backoff, at most 1 h, never below backoff', () => {
    expect(load({ max: 2, backoff: '30s' }).plans.demo.retry!.maxBackoffMs).toBe(300_000);
    expect(load({ max: 2, backoff: '20m' }).plans.demo.retry!.maxBackoffMs).toBe(3_600_000);
    expect(load({ max: 2, backoff: '2h' }).plans.demo.retry!.maxBackoffMs).toBe(7_200_000);
  });

  it.each([
    ['max missing', { backoff: '1s' }, 'plans.demo.retry.max'],
    [
      'max zero',
      { max: 0, backoff: '1s' },
      'plans.demo.retry.max: expected a whole number of retries, at least 1',
    ],
    ['max fractional', { max: 1.5, backoff: '1s' }, 'plans.demo.retry.max: expected a whole number'],
    ['max a string', { max: '3', backoff: '1s' }, 'plans.demo.retry.max'],
    ['backoff missing', { max: 3 }, 'plans.demo.retry.backoff'],
    ['backoff zero', { max: 3, backoff: 0 }, 'plans.demo.retry.backoff: must be longer than 0'],
    ['backoff not a duration', { max: 3, backoff: 'soon' }, 'plans.demo.retry.backoff: expected a duration'],
    [
      'max_backoff below backoff',
      { max: 3, backoff: '1m', max_backoff: '30s' },
      'plans.demo.retry.max_backoff: must not be shorter than backoff',
    ],
    ['unknown key', { max: 3, backoff: '1s', jitter: false }, 'plans.demo.retry'],
    ['not a mapping', 3, 'plans.demo.retry: expected a mapping'],
  ])('refuses %s', (_what, retry, message) => {
    expect(errorOf(() => load(retry))).toContain(message);
  });
});
