// Ids (prefixed ulids, sortable by creation) and the ISO timestamps every write records.
import { getRandomValues } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * The same CSPRNG as ulid's default, drawn a pool at a time: the default asks the crypto module for one
 * byte per character (16 calls per new id, a measurable share of a no-op attempt's server CPU).
 */
const pool = new Uint8Array(1024);
let drawn = pool.length;
function prng(): number {
  if (drawn === pool.length) {
    getRandomValues(pool);
    drawn = 0;
  }
  return pool[drawn++] / 256;
}

// Monotonic: ids made in one millisecond still sort in creation order (keyset paging relies on it).
const ulid = monotonicFactory(prng);

export const newDeploymentId = () => `dep_${ulid()}`;
export const newAttemptId = () => `att_${ulid()}`;
export const newInstanceId = () => `ins_${ulid()}`;
export const newFreezeId = () => `frz_${ulid()}`;
/**
 * This instance's wall clock. LIFELINE_CLOCK_OFFSET_MS shifts it, so tests can run an instance whose
 * clock is off (docs/scaling.md, "Clock skew"); leases never read it, they use the database's clock.
 */
const offsetMs = Number(process.env.LIFELINE_CLOCK_OFFSET_MS ?? 0) || 0;
export const clockNow = () => Date.now() + offsetMs;
export const nowIso = () => new Date(clockNow()).toISOString();
export const newStackId = () => `stk_${ulid()}`;
export const newRunId = () => `run_${ulid()}`;
