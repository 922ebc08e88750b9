// An `unknown` attempt keeps its concurrency slot (its process may still run) until it is settled late
// (the end frees it, attempt-writes.ts) or its deployment is resolved by an operator or a check, or
// deleted (force): then here.
import type { Transaction } from 'kysely';
import { notifyGate, releaseSlot } from '../../store/gates.ts';
import type { Database, DeploymentsTable } from '../../store/schema.ts';

/** Frees the slot of an `unknown` deployment's current attempt, in the transaction that resolves it. */
export async function releaseResolved(trx: Transaction<Database>, dep: DeploymentsTable): Promise<void> {
  if (dep.state !== 'unknown' || !dep.current_attempt_id) return;
  const key = await releaseSlot(trx, dep.current_attempt_id);
  if (key !== null) await notifyGate(trx, key);
}
