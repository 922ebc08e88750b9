// The freeze gate (SPEC §13.2) for the gate mechanism (gates/registry.ts): it reads the freezes in force
// on the database's clock and asks the pure decision in domain/freeze.ts. Only reads; nothing is written
// here: the wait, its opening and their events are the mechanism's (gates/admit.ts).
import type { Transaction } from 'kysely';
import { decideFreezeGate } from '../domain/freeze.ts';
import type { GateVerdict } from '../domain/gates.ts';
import type { AttemptKind } from '../domain/types.ts';
import { dialectOf, selectDbNow } from '../store/instances.ts';
import type { AttemptGatesTable, AttemptsTable, Database, DeploymentsTable } from '../store/schema.ts';
import type { Ctx } from './context.ts';
import { allFreezes } from './freezes.ts';

/** What the gate reads of gates/registry.ts's GateInput (typed here: registry imports this module). */
interface Input {
  ctx: Ctx;
  trx: Transaction<Database>;
  attempt: AttemptsTable;
  dep: DeploymentsTable;
  row: AttemptGatesTable | null;
  arrival: boolean;
}

export const freezeGate = {
  name: 'freeze' as const,
  // An attempt still waiting on a slot has not passed its gates: a freeze made since holds it again.
  recloses: true,
  async check({
    ctx,
    trx,
    attempt,
    dep,
    row,
    arrival,
  }: Input): Promise<{ verdict: GateVerdict; key: null } | null> {
    const freezes = await allFreezes(ctx, trx);
    // Nothing to look at: an attempt that never waited records nothing; one that waited is let go.
    if (freezes.length === 0) return row ? { verdict: { kind: 'open' }, key: null } : null;
    const nowMs = await selectDbNow(trx, dialectOf(trx));
    const g = decideFreezeGate(
      freezes,
      {
        subject: {
          plan: dep.plan,
          labels: JSON.parse(dep.labels) as Record<string, string>,
          kind: attempt.kind as AttemptKind,
        },
        // Only an admin can ask for force (domain/transitions.ts guardForce).
        adminForce: Number(attempt.force) === 1,
        // An automatic retry, or an attempt already waiting, waits for the end; it is never refused.
        retry: attempt.retry_number != null || !arrival,
      },
      nowMs,
    );
    if (g.open) return row ? { verdict: { kind: 'open' }, key: null } : null;
    if (!g.wait) return { verdict: { kind: 'refuse', code: g.code, detail: g.message }, key: null };
    return { verdict: { kind: 'wait', detail: g.detail, expiresInMs: null }, key: null };
  },
};
