import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  approvalDeadline,
  approvalExpired,
  approvalNeeded,
  decideApproval,
  type ApprovalPolicy,
} from '../../src/domain/approval.ts';
import { ROLES, type Actor } from '../../src/domain/types.ts';

const policy: ApprovalPolicy = { deploy: true, teardown: false, role: 'operator', expiresMs: 60_000 };
const waiting = { state: 'queued' as const, waitingForApproval: true, requestedBy: 'alice' };
const bob: Actor = { name: 'bob', role: 'operator' };

describe('approvals: needed', () => {
  it('per kind; never without a policy; never for a retry of an approved attempt', () => {
    expect(approvalNeeded(policy, 'deploy', false)).toBe(true);
    expect(approvalNeeded(policy, 'teardown', false)).toBe(false);
    expect(approvalNeeded(null, 'deploy', false)).toBe(false);
    expect(approvalNeeded(policy, 'deploy', true)).toBe(false);
  });
});

describe('approvals: who may answer', () => {
  it('another token of at least the role approves', () => {
    expect(decideApproval('approve', waiting, bob, 'operator')).toEqual({ ok: true });
    expect(decideApproval('approve', waiting, { name: 'carol', role: 'admin' }, 'operator')).toEqual({
      ok: true,
    });
  });

  it('never the requester (even an admin), but the requester may reject (withdraw)', () => {
    const r = decideApproval('approve', waiting, { name: 'alice', role: 'admin' }, 'operator');
    expect(r).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(!r.ok && r.message).toContain('requested this attempt and may not approve it');
    expect(decideApproval('reject', waiting, { name: 'alice', role: 'operator' }, 'operator')).toEqual({
      ok: true,
    });
  });

  it('a viewer, or an operator where admin is required: 403 naming the role', () => {
    const v = decideApproval('approve', waiting, { name: 'v', role: 'viewer' }, 'operator');
    expect(v).toMatchObject({ ok: false, code: 'FORBIDDEN' });
    expect(!v.ok && v.message).toContain('takes the operator role');
    expect(decideApproval('reject', waiting, bob, 'admin')).toMatchObject({ ok: false, code: 'FORBIDDEN' });
  });

  it('not waiting for approval: 409 (ATTEMPT_TERMINAL once ended)', () => {
    expect(
      decideApproval('approve', { ...waiting, waitingForApproval: false }, bob, 'operator'),
    ).toMatchObject({
      ok: false,
      code: 'INVALID_TRANSITION',
    });
    expect(
      decideApproval(
        'reject',
        { ...waiting, state: 'cancelled', waitingForApproval: false },
        bob,
        'operator',
      ),
    ).toMatchObject({ ok: false, code: 'ATTEMPT_TERMINAL' });
  });

  it('property: approve is allowed exactly for a waiting attempt, enough role, another name', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ROLES),
        fc.constantFrom('operator' as const, 'admin' as const),
        fc.constantFrom('alice', 'bob'),
        fc.boolean(),
        (role, need, name, isWaiting) => {
          const r = decideApproval(
            'approve',
            { ...waiting, waitingForApproval: isWaiting },
            { name, role },
            need,
          );
          const rank = ROLES.indexOf(role) >= ROLES.indexOf(need);
          expect(r.ok).toBe(rank && isWaiting && name !== 'alice');
        },
      ),
    );
  });
});

describe('approvals: expiry', () => {
  it('expires at since + expires; never without expires', () => {
    expect(approvalExpired(policy, 1000, 60_999)).toBe(false);
    expect(approvalExpired(policy, 1000, 61_000)).toBe(true);
    expect(approvalDeadline(policy, 1000)).toBe(61_000);
    expect(approvalExpired({ ...policy, expiresMs: null }, 0, Number.MAX_SAFE_INTEGER)).toBe(false);
    expect(approvalDeadline({ ...policy, expiresMs: null }, 0)).toBeNull();
  });
});
