// The `retention:` config (SPEC §11): ages like other durations but allowed past the 24.8-day timer cap,
// each optional, absent = keep forever, and clear errors for what is wrong.
import { describe, expect, it } from 'vitest';
import { ConfigError, configFromObject } from '../../src/config/load.ts';

const load = (retention: unknown) =>
  configFromObject({ data_dir: '/tmp/x', plans: {}, ...(retention === undefined ? {} : { retention }) }, {});

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('retention config', () => {
  it('reads both ages, in days too (longer than a timer may wait)', () => {
    expect(load({ logs: '30d', run_dirs: '7d' }).retention).toEqual({
      logsMs: 30 * 86_400_000,
      runDirsMs: 7 * 86_400_000,
    });
    expect(load({ logs: '365d' }).retention).toEqual({ logsMs: 365 * 86_400_000, runDirsMs: null });
    expect(load({ run_dirs: '12h' }).retention).toEqual({ logsMs: null, runDirsMs: 12 * 3_600_000 });
  });

  it('keeps everything when absent', () => {
    expect(load(undefined).retention).toBeUndefined();
    expect(load({}).retention).toEqual({ logsMs: null, runDirsMs: null });
  });

  it('says what is wrong', () => {
    expect(problems(() => load({ logs: 'a month' }))).toMatch(/retention\.logs.*duration like 30s/s);
    expect(problems(() => load({ run_dirs: 0 }))).toMatch(/retention\.run_dirs.*longer than 0/s);
    expect(problems(() => load({ logs: '40000d' }))).toMatch(/too long: at most 36500d/);
    expect(problems(() => load({ logs: '30d', keep: '1d' }))).toMatch(/keep/);
    expect(problems(() => load('30d'))).toMatch(/retention/);
  });
});
