// Ids are ulids from a pooled CSPRNG (src/lifecycle/ids.ts): unique, sorted by creation (keyset paging
// relies on it), and their random part is not stuck on one value when the pool refills.
import { describe, expect, it } from 'vitest';
import { newAttemptId, newDeploymentId } from '../../src/lifecycle/ids.ts';

describe('ids', () => {
  it('are unique and sort in creation order, within a millisecond and across many', () => {
    const ids = Array.from({ length: 5000 }, () => newAttemptId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => /^att_[0-9A-HJKMNP-TV-Z]{26}$/.test(id))).toBe(true);
  });

  it('draw fresh randomness for each new millisecond, past many refills of the pool', async () => {
    const randoms = new Set<string>();
    for (let i = 0; i < 200; i++) {
      randoms.add(newDeploymentId().slice(-16));
      const ms = Date.now();
      while (Date.now() === ms) await new Promise((r) => setImmediate(r));
    }
    // 200 new milliseconds, 16 characters each from 1,024-byte pools: every random part differs.
    expect(randoms.size).toBe(200);
    // Every character of the alphabet turns up at the random positions (not a stuck or short pool).
    const chars = new Set([...randoms].join(''));
    expect(chars.size).toBe(32);
  });
});
