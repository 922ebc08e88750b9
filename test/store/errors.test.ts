// What a database error means: outages (503) on both drivers, conflicts and retries, everything else a bug.
import { describe, expect, it } from 'vitest';
import { classifyStoreError, isStoreUnavailable } from '../../src/store/errors.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('store error classes', () => {
  it('SQLite busy, locked, I/O, full and read-only errors are outages', () => {
    for (const code of [
      'SQLITE_BUSY',
      'SQLITE_BUSY_SNAPSHOT',
      'SQLITE_LOCKED',
      'SQLITE_IOERR_WRITE',
      'SQLITE_FULL',
      'SQLITE_READONLY',
    ]) {
      expect(classifyStoreError(withCode(code)), code).toBe('unavailable');
    }
  });

  it('Postgres shutdown, connection loss, refused connects and timeouts are outages', () => {
    for (const code of [
      '57P01',
      '57P03',
      '08006',
      '08001',
      '53300',
      '57014',
      '25P03',
      'ECONNREFUSED',
      'ECONNRESET',
    ]) {
      expect(classifyStoreError(withCode(code)), code).toBe('unavailable');
    }
    for (const message of [
      'Connection terminated unexpectedly',
      'timeout exceeded when trying to connect',
      'Cannot use a pool after calling end on the pool',
      'driver has already been destroyed',
    ]) {
      expect(isStoreUnavailable(new Error(message)), message).toBe(true);
    }
    // wrapped errors are looked through
    expect(isStoreUnavailable(new Error('outer', { cause: withCode('57P01') }))).toBe(true);
  });

  it('unique violations are conflicts; serialization failures and deadlocks ask for a retry', () => {
    expect(classifyStoreError(withCode('23505'))).toBe('conflict');
    expect(classifyStoreError(withCode('SQLITE_CONSTRAINT_UNIQUE'))).toBe('conflict');
    expect(classifyStoreError(withCode('40001'))).toBe('retry');
    expect(classifyStoreError(withCode('40P01'))).toBe('retry');
  });

  it('bugs stay bugs: syntax errors, other constraints, plain errors, non-errors', () => {
    for (const e of [
      withCode('42601'),
      withCode('23503'),
      withCode('SQLITE_ERROR'),
      new Error('boom'),
      'str',
      null,
    ]) {
      expect(classifyStoreError(e)).toBe('other');
    }
  });
});
