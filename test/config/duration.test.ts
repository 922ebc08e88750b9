import { describe, expect, it } from 'vitest';
import { MAX_DURATION_MS, parseDuration } from '../../src/config/load.ts';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['0s', 0],
    ['250', 250],
    [1500, 1500],
    [0, 0],
  ] as const)('%s → %i ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', '1.5h', '-1s', '10 m', '10M', '1w', 'h', '1h30m', ' 1s', 'ten', '0x10'])(
    'rejects %j',
    (bad) => {
      expect(() => parseDuration(bad)).toThrow('expected a duration like 30s, 10m or 1h');
    },
  );

  it.each([1.5, -1, Number.NaN, Infinity])('rejects the number %d', (bad) => {
    expect(() => parseDuration(bad)).toThrow('expected a duration like 30s, 10m or 1h');
  });

  it('rejects durations that would overflow a Node timer', () => {
    expect(parseDuration(MAX_DURATION_MS)).toBe(MAX_DURATION_MS);
    expect(parseDuration('24d')).toBe(24 * 86_400_000);
    expect(() => parseDuration('25d')).toThrow(/too long/);
    expect(() => parseDuration(MAX_DURATION_MS + 1)).toThrow(/too long/);
    expect(() => parseDuration('99999999999999999999d')).toThrow(/too long/);
  });
});
