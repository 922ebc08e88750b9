// The approval gate (SPEC §13.3) for the gate mechanism (gates/registry.ts): an attempt of a kind the
// plan's `approval:` names waits until another token approves it (commands/approval.ts records the
// approver on the attempt); an automatic retry of an approved attempt carries that approval.
import type { Transaction } from 'kysely';
import type { PlanConfig } from '../config/types.ts';
import { approvalNeeded } from '../domain/approval.ts';
import type { GateVerdict } from '../domain/gates.ts';
import type { AttemptKind } from '../domain/types.ts';
import { selectAttemptByNumber } from '../store/approvals.ts';
import type { AttemptGatesTable, AttemptsTable, Database } from '../store/schema.ts';

/** What the gate reads of gates/registry.ts's GateInput (typed here: registry imports this module). */
interface Input {
  trx: Transaction<Database>;
  attempt: AttemptsTable;
  plan: PlanConfig;
  row: AttemptGatesTable | null;
}

type Check = { verdict: GateVerdict; key: null };

export const approvalGate = {
  name: 'approval' as const,
  async check({ trx, attempt, plan, row }: Input): Promise<Check | null> {
    if (attempt.approved_by) {
      return row
        ? { verdict: { kind: 'open', detail: { approved_by: attempt.approved_by } }, key: null }
        : null;
    }
    if (row)
      return { verdict: { kind: 'wait', detail: JSON.parse(row.detail), expiresInMs: null }, key: null };
    const policy = plan.approval;
    if (!policy) return null;
    const inherited = await inheritedApproval(trx, attempt);
    if (!approvalNeeded(policy, attempt.kind as AttemptKind, inherited !== null)) {
      return inherited
        ? { verdict: { kind: 'open', detail: { approved_by: inherited.by } }, key: null }
        : null;
    }
    return {
      verdict: {
        kind: 'wait',
        detail: { role: policy.role, requested_by: attempt.requested_by },
        expiresInMs: policy.expiresMs,
      },
      key: null,
    };
  },
  /** An inherited approval is written on the retry itself, so a retry of the retry inherits it too. */
  async pass({ trx, attempt }: Input): Promise<Record<string, unknown>> {
    if (attempt.approved_by) return {};
    const inherited = await inheritedApproval(trx, attempt);
    if (!inherited) return {};
    await trx
      .updateTable('attempts')
      .set({ approved_by: inherited.by, approved_at: inherited.at })
      .where('id', '=', attempt.id)
      .where('approved_by', 'is', null)
      .execute();
    return { approved_by: inherited.by, inherited: true };
  },
};

/** The approval an automatic retry (§9.1) inherits: that of the attempt it reruns, the one before it. */
async function inheritedApproval(
  trx: Transaction<Database>,
  attempt: AttemptsTable,
): Promise<{ by: string; at: string } | null> {
  if (attempt.retry_number == null) return null;
  const prev = await selectAttemptByNumber(trx, attempt.deployment_id, Number(attempt.number) - 1);
  return prev?.approved_by ? { by: prev.approved_by, at: prev.approved_at ?? '' } : null;
}
