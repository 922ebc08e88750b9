// Runs an attempt through its gates inside the caller's transaction (SPEC §13): at acceptance, and again
// whenever something may have let it through (a slot freed, a freeze lifted, an approval). Generic over
// the gate: a wait is one `attempt_gates` row plus a `gate_waiting` event, an opening marks the row
// and appends `gate_opened`, both in the transaction that writes the state they reflect. When the last
// gate opens, the attempt stops waiting and becomes this instance's to launch (a compare-and-set on its
// `waiting` flag: two instances never both open it).
import type { Transaction } from 'kysely';
import type { PlanConfig } from '../../config/types.ts';
import { LifelineError } from '../../domain/errors.ts';
import type { LifelineEvent, NewEvent } from '../../domain/types.ts';
import { insertEvents } from '../../store/events.ts';
import {
  insertGateRow,
  markGateOpened,
  reopenGateRow,
  selectGateRows,
  setWaiting,
} from '../../store/gates.ts';
import { dialectOf, selectDbNow } from '../../store/instances.ts';
import type { AttemptGatesTable, AttemptsTable, Database, DeploymentsTable } from '../../store/schema.ts';
import { LostRace } from '../../store/transition.ts';
import type { Ctx } from '../context.ts';
import { GATES, type Gate, type GateCheck } from './registry.ts';

export interface GateRun {
  /** Some gate still holds it: it stays queued and is not launched. */
  waiting: boolean;
  /** It waited and every gate has now opened: this instance owns it and launches it after the commit. */
  opened: boolean;
  events: LifelineEvent[];
}

export interface GateSubject {
  attempt: AttemptsTable;
  dep: DeploymentsTable;
  plan: PlanConfig;
  at: string;
}

/**
 * Looks at every gate of the attempt. At `arrival` (the attempt row was just inserted, not waiting) a
 * refusal throws its 4xx and the caller's transaction writes nothing. Later, the attempt must still
 * be waiting: it is a LostRace otherwise (someone else opened or ended it), and the caller re-reads.
 */
export async function runGates(
  ctx: Ctx,
  trx: Transaction<Database>,
  s: GateSubject,
  arrival: boolean,
): Promise<GateRun> {
  const rows = arrival ? [] : await selectGateRows(trx, s.attempt.id);
  const byGate = new Map(rows.map((r) => [r.gate, r]));
  const decided: { gate: Gate; check: GateCheck; row: AttemptGatesTable | null }[] = [];
  let holding = false;
  for (const gate of GATES) {
    const row = byGate.get(gate.name) ?? null;
    if (row?.opened_at && !gate.recloses) continue;
    if (gate.last && holding) continue;
    const check = await gate.check({ ctx, trx, ...s, row, arrival });
    if (!check) continue;
    const v = check.verdict;
    if (row?.opened_at && v.kind !== 'wait') continue; // opened before and still open: nothing to record
    if (v.kind === 'refuse') {
      if (arrival) throw new LifelineError(v.code, v.detail);
      holding = true; // a refusal applies to arrivals: one already waiting goes on waiting
      continue;
    }
    decided.push({ gate, check, row });
    if (v.kind === 'wait') holding = true;
  }

  // The attempt's row first (every writer of it takes its lock before the gate rows: no deadlock).
  const base = { deployment_id: s.dep.id, attempt_id: s.attempt.id };
  let opened = false;
  if (arrival && holding) {
    if (!(await setWaiting(trx, s.attempt.id, 0, 1))) throw new LostRace(`attempt ${s.attempt.id}`);
  } else if (!arrival && !holding) {
    const owner = { owner: ctx.instanceId, owner_epoch: ctx.lease.epoch, opened_at: s.at };
    if (!(await setWaiting(trx, s.attempt.id, 1, 0, owner))) throw new LostRace(`attempt ${s.attempt.id}`);
    opened = true;
  }

  const events: LifelineEvent[] = [];
  let expiresAt: ((ms: number) => Promise<string>) | null = null;
  for (const { gate, check, row } of decided) {
    const v = check.verdict;
    if (v.kind === 'wait') {
      if (row && !row.opened_at) continue; // waits on as before
      let expires: string | null = null;
      if (v.expiresInMs !== null) {
        expiresAt ??= dbClock(trx);
        expires = await expiresAt(v.expiresInMs);
      }
      const e: NewEvent = {
        ...base,
        type: 'gate_waiting',
        data: { gate: gate.name, detail: v.detail, since: s.at, expires_at: expires },
      };
      const [stored] = await insertEvents(trx, [e], s.at);
      events.push(stored);
      const fields = {
        detail: JSON.stringify(v.detail),
        since: s.at,
        queue_seq: stored.seq,
        expires_at: expires,
      };
      if (row) {
        // It held before and let go; it holds again (a new freeze): the same record waits once more.
        if (!(await reopenGateRow(trx, s.attempt.id, gate.name, fields))) {
          throw new LostRace(`gate ${gate.name} of ${s.attempt.id}`);
        }
        continue;
      }
      await insertGateRow(trx, {
        attempt_id: s.attempt.id,
        gate: gate.name,
        key: check.key,
        ...fields,
        opened_at: null,
      });
      continue;
    }
    // Open: the gate's own write (a slot), then the record and the event.
    const extra = gate.pass ? await gate.pass({ ctx, trx, ...s, row, arrival }, check) : {};
    if (row) {
      if (!(await markGateOpened(trx, s.attempt.id, gate.name, s.at))) {
        throw new LostRace(`gate ${gate.name} of ${s.attempt.id}`);
      }
    } else if (!gate.announcePass) continue;
    const since = row?.since ?? s.at;
    const detail = { ...(row ? (JSON.parse(row.detail) as Record<string, unknown>) : {}), ...extra };
    delete detail.position;
    const e: NewEvent = {
      ...base,
      type: 'gate_opened',
      data: {
        gate: gate.name,
        detail,
        since,
        waited_ms: Math.max(0, Date.parse(s.at) - Date.parse(since)),
      },
    };
    events.push(...(await insertEvents(trx, [e], s.at)));
  }
  return { waiting: holding, opened, events };
}

/** Times on the database's clock (expiry is judged there, whichever instance looks). */
function dbClock(trx: Transaction<Database>): (ms: number) => Promise<string> {
  let now: number | null = null;
  return async (ms) => {
    now ??= await selectDbNow(trx, dialectOf(trx));
    return new Date(now + ms).toISOString();
  };
}
