// The gates an accepted attempt passes (SPEC §13), in order. The extension point for a new gate: add a
// `Gate` here whose `check` reads what it needs in the transaction and asks its pure decision in
// src/domain/gates*.ts. Recording a wait, opening, expiring, cancel and the events are generic
// (admit.ts): a gate only says open, wait (detail, expiry) or refuse.
import type { Transaction } from 'kysely';
import type { PlanConfig } from '../../config/types.ts';
import { LifelineError } from '../../domain/errors.ts';
import { concurrencyKey, decideConcurrency, type GateName, type GateVerdict } from '../../domain/gates.ts';
import { countAhead, grantSlot, lockKey, selectSlots } from '../../store/gates.ts';
import { LostRace } from '../../store/transition.ts';
import type { AttemptGatesTable, AttemptsTable, Database, DeploymentsTable } from '../../store/schema.ts';
import type { Ctx } from '../context.ts';
import { approvalGate } from '../approval-gate.ts';
import { freezeGate } from '../freezes-gate.ts';

export interface GateInput {
  ctx: Ctx;
  trx: Transaction<Database>;
  attempt: AttemptsTable;
  dep: DeploymentsTable;
  plan: PlanConfig;
  /** Its waiting record on this gate, when it waits already; null at arrival or when it never waited. */
  row: AttemptGatesTable | null;
  /** True while the attempt is being accepted (a refusal is then a 4xx and nothing is written). */
  arrival: boolean;
  at: string;
}

export interface GateCheck {
  verdict: GateVerdict;
  /** The queue the wait is in (a concurrency key); null for a gate without queues. */
  key: string | null;
}

export interface Gate {
  name: GateName;
  /**
   * Looked at only once every other gate is open: a concurrency slot is not held while an approval or
   * a freeze keeps the attempt from starting anyway.
   */
  last?: boolean;
  /** Whether letting an attempt through at once (it never waited) is an event too: a slot grant is. */
  announcePass?: boolean;
  /**
   * May hold again after it opened (a freeze made later): looked at again, while some other gate still
   * holds the attempt, even where its record says opened.
   */
  recloses?: boolean;
  /** Reads (and locks) only. null: the gate does not apply to this attempt, nothing is recorded. */
  check(input: GateInput): Promise<GateCheck | null>;
  /** The gate's own write when it lets the attempt through (a slot), in the same transaction. */
  pass?(input: GateInput, check: GateCheck): Promise<Record<string, unknown>>;
}

/** §13.1: at most `limit` attempts of one key past their gates and not ended, first come first served. */
export const concurrencyGate: Gate = {
  name: 'concurrency',
  last: true,
  announcePass: true,
  async check({ trx, attempt, plan, row }) {
    const c = plan.concurrency;
    if (!c) return null;
    let key: string;
    if (row?.key) key = row.key;
    else {
      const k = concurrencyKey(c.keyParts, JSON.parse(attempt.params) as Record<string, unknown>);
      if (!k.ok) {
        throw new LifelineError('VALIDATION', `params ${k.field.slice('params.'.length)} ${k.reason}`, [
          { field: k.field, reason: k.reason },
        ]);
      }
      key = k.key;
    }
    await lockKey(trx, key);
    const holders = (await selectSlots(trx, key)).map((s) => s.attempt_id);
    const ahead = await countAhead(trx, 'concurrency', key, row ? Number(row.queue_seq) : null);
    const verdict = decideConcurrency({
      key,
      limit: c.limit,
      whenBusy: c.whenBusy,
      queueTimeoutMs: c.queueTimeoutMs,
      holders,
      ahead,
      waiting: row !== null,
    });
    return { verdict, key };
  },
  async pass({ trx, attempt, plan, at }, check) {
    const slot = await grantSlot(trx, check.key!, plan.concurrency!.limit, attempt.id, at);
    // The key is locked and the check saw room: no slot means the rows moved under us; re-decide.
    if (slot === null) throw new LostRace(`a slot of ${check.key}`);
    return { key: check.key, slot };
  },
};

/** Every gate, in the order they are looked at. Freezes and approvals (§13.2, §13.3) go before concurrency. */
export const GATES: Gate[] = [freezeGate, approvalGate, concurrencyGate];
