// Ids (prefixed ulids, sortable by creation) and the ISO timestamps every write records.
import { monotonicFactory } from 'ulid';

// Monotonic: ids made in one millisecond still sort in creation order (keyset paging relies on it).
const ulid = monotonicFactory();

export const newDeploymentId = () => `dep_${ulid()}`;
export const newAttemptId = () => `att_${ulid()}`;
export const newInstanceId = () => `ins_${ulid()}`;
export const nowIso = () => new Date().toISOString();
