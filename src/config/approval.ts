// A plan's `approval:` (SPEC §13.3): which kinds of attempt wait for a second person, the least role
// that person needs, and how long the wait lasts.
import { z } from 'zod';
import type { ApprovalPolicy } from '../domain/approval.ts';
import { checkDuration } from './duration.ts';
import { kindOf } from './messages.ts';

export function approvalSchema() {
  return z
    .strictObject(
      {
        deploy: z.boolean().optional(),
        teardown: z.boolean().optional(),
        role: z
          .enum(['operator', 'admin'], {
            error: 'expected operator or admin (a viewer may not approve anything)',
          })
          .optional(),
        expires: z
          .unknown()
          .transform((v, zc) => {
            const r = checkDuration(v);
            if ('reason' in r || r.ms <= 0) {
              zc.addIssue({ code: 'custom', message: 'reason' in r ? r.reason : 'must be longer than 0' });
              return z.NEVER;
            }
            return r.ms;
          })
          .optional(),
      },
      {
        error: (iss) =>
          iss.code === 'invalid_type'
            ? `expected a mapping like {deploy: true, teardown: true, role: operator, expires: 24h}, got ${kindOf(iss.input)}`
            : undefined,
      },
    )
    .superRefine((a, zc) => {
      if (a.deploy !== true && a.teardown !== true) {
        zc.addIssue({
          code: 'custom',
          message: 'set deploy: true and/or teardown: true (or remove approval)',
        });
      }
    });
}

type Parsed = z.output<ReturnType<typeof approvalSchema>>;

export function resolveApproval(a: Parsed | undefined): ApprovalPolicy | null {
  if (!a) return null;
  return {
    deploy: a.deploy ?? false,
    teardown: a.teardown ?? false,
    role: a.role ?? 'operator',
    expiresMs: a.expires ?? null,
  };
}
