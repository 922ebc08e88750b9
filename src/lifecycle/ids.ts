// Ids (prefixed ulids, sortable by creation) and the ISO timestamps every write records.
import { monotonicFactory } from 'ulid';

// Monotonic: ids made in one millisecond still sort in creation order (keyset paging relies on it).
const ulid = monotonicFactory();

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
