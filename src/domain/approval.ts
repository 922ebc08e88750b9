// Approvals (SPEC §13.3): whether an attempt must wait for a second person, who may approve or reject
// it, and when the wait expires. Pure: times are passed in (the database's clock).
import type { Actor, AttemptKind, AttemptState, ErrorCode, Role } from './types.ts';

/** A plan's `approval:` (config). */
export interface ApprovalPolicy {
  deploy: boolean;
  teardown: boolean;
  /** The least role an approver needs (operator or admin). */
  role: Exclude<Role, 'viewer'>;
  /** How long an attempt waits for an answer before it is cancelled (approval_expired); null = forever. */
  expiresMs: number | null;
}

const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };

/**
 * Whether a new attempt of this kind waits for approval. A retry (SPEC §9.1) of an attempt that was
 * approved (or itself inherited an approval) inherits it: `retryOfApproved`.
 */
export function approvalNeeded(
  policy: ApprovalPolicy | null,
  kind: AttemptKind,
  retryOfApproved: boolean,
): boolean {
  if (!policy || retryOfApproved) return false;
  return kind === 'deploy' ? policy.deploy : policy.teardown;
}

export interface ApprovalSubject {
  state: AttemptState;
  /** The attempt is held by the approval gate now. */
  waitingForApproval: boolean;
  requestedBy: string;
}

export type ApprovalDecision =
  | { ok: true }
  | {
      ok: false;
      code: Extract<ErrorCode, 'FORBIDDEN' | 'INVALID_TRANSITION' | 'ATTEMPT_TERMINAL'>;
      message: string;
    };

/**
 * May `actor` approve (or reject) the attempt? Checked in this order so that the answer is the most
 * useful one: the role (a viewer may never), then whether the attempt waits for an answer at all, then
 * self-approval (the requester may reject, i.e. withdraw, but never approve its own attempt).
 */
export function decideApproval(
  action: 'approve' | 'reject',
  subject: ApprovalSubject,
  actor: Actor,
  policyRole: ApprovalPolicy['role'],
): ApprovalDecision {
  if (RANK[actor.role] < RANK[policyRole]) {
    return {
      ok: false,
      code: 'FORBIDDEN',
      message: `to ${action} this attempt takes the ${policyRole} role; token "${actor.name}" has ${actor.role}`,
    };
  }
  if (!subject.waitingForApproval) {
    const ended = !['queued', 'running'].includes(subject.state);
    return {
      ok: false,
      code: ended ? 'ATTEMPT_TERMINAL' : 'INVALID_TRANSITION',
      message: ended
        ? `the attempt has ended (${subject.state}): there is nothing to ${action}`
        : `the attempt is ${subject.state} and not waiting for approval: there is nothing to ${action}`,
    };
  }
  if (action === 'approve' && subject.requestedBy === actor.name) {
    return {
      ok: false,
      code: 'FORBIDDEN',
      message: `"${actor.name}" requested this attempt and may not approve it: another token of at least the ${policyRole} role must`,
    };
  }
  return { ok: true };
}

/** Whether an attempt waiting for approval since `sinceMs` has waited past `expires` at `nowMs`. */
export function approvalExpired(policy: ApprovalPolicy, sinceMs: number, nowMs: number): boolean {
  return policy.expiresMs !== null && nowMs >= sinceMs + policy.expiresMs;
}

/** When the wait of an attempt waiting since `sinceMs` expires (ms), or null if it never does. */
export function approvalDeadline(policy: ApprovalPolicy, sinceMs: number): number | null {
  return policy.expiresMs === null ? null : sinceMs + policy.expiresMs;
}
