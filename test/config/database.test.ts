// The `database:` section: pool size and timeouts for Postgres, with defaults (docs/scaling.md).
import { describe, expect, it } from 'vitest';
import { ConfigError, configFromObject, DEFAULTS } from '../../src/config/load.ts';

const base = { plans: { demo: { deploy: ['/bin/true'], teardown: ['/bin/true'] } } };
const load = (extra: Record<string, unknown>) => configFromObject({ ...base, ...extra }, { baseDir: '/tmp' });

describe('database settings', () => {
  it('defaults: a pool of 10, 5 s to connect, 30 s per statement and idle in a transaction', () => {
    expect(load({}).database).toEqual({
      poolMax: 10,
      connectTimeoutMs: 5_000,
      statementTimeoutMs: 30_000,
      idleInTransactionTimeoutMs: 30_000,
    });
    expect(DEFAULTS.database.poolMax).toBe(10);
  });

  it('reads every key', () => {
    const c = load({
      database: {
        pool_max: 3,
        connect_timeout: '2s',
        statement_timeout: '1m',
        idle_in_transaction_timeout: '45s',
      },
    });
    expect(c.database).toEqual({
      poolMax: 3,
      connectTimeoutMs: 2_000,
      statementTimeoutMs: 60_000,
      idleInTransactionTimeoutMs: 45_000,
    });
  });

  it('refuses a bad value or an unknown key, naming the field', () => {
    const msg = (extra: Record<string, unknown>) => {
      try {
        load(extra);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('accepted');
    };
    expect(msg({ database: { pool_max: 0 } })).toContain('database.pool_max');
    expect(msg({ database: { statement_timeout: 'soon' } })).toContain('database.statement_timeout');
    expect(msg({ database: { pool_mx: 4 } })).toMatch(
      /database\.pool_mx: unknown key \(did you mean pool_max\?\)/,
    );
  });
});
