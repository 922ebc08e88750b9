// The chaos run's summary: a table for people, then one `CHAOS_SUMMARY {json}` line for machines
// (the vitest smoke test and CI read it).
import type { UnexpectedExit } from './fleet.ts';
import type { BadAnswer, Op, Outcome } from './load.ts';
import type { Extras, outcomes } from './verify.ts';
import type { GateChecks } from './verify-gates.ts';

export interface Summary {
  store: string;
  seed: number;
  instances: number;
  duration_s: number;
  workers: number;
  operations: {
    total: number;
    by_kind: Record<Op, Record<Outcome, number>>;
    refusals: Record<string, number>;
  };
  /** 5xx answers other than a 503 STORE_UNAVAILABLE with Retry-After: must be 0. */
  server_errors: number;
  server_error_samples: BadAnswer[];
  secret_in_responses: number;
  crashes: {
    instances_killed: number;
    plans_killed: number;
    plans_and_supervisors_killed: number;
    supervisors_killed: number;
    db_restarts: number;
    faults_without_target: number;
    instances_died_on_their_own: number;
  };
  unexpected_exits: UnexpectedExit[];
  /** slot_holders_resolved: `unknown` holders of the shared slot the settle resolved, as an operator. */
  settle: { settled: boolean; seconds: number; slot_holders_resolved: number };
  invariants: {
    checked: { deployments: number; attempts: number; events: number };
    violations: number;
    /** Violations counted by what they are about (`leftover`, `retry`, `webhook`, `§8.4`…). */
    by_kind: Record<string, number>;
    details: string[];
  };
  outcomes: ReturnType<typeof outcomes>;
  skew: { instance: number; offset_ms: number };
  checks: Extras;
  /** Stacks, runs and gates (issues 19, 20): what was checked and what the gates did. */
  gates: GateChecks;
  ok: boolean;
}

const CLASSES: Outcome[] = ['2xx', '4xx', '503', '5xx', 'unreachable', 'timeout'];

export function printSummary(s: Summary): void {
  const out: string[] = [];
  const row = (cells: (string | number)[]) =>
    out.push(cells.map((c, i) => (i === 0 ? String(c).padEnd(9) : String(c).padStart(12))).join(''));
  out.push('');
  out.push(
    `chaos summary: ${s.store}, ${s.instances} instance(s), ${s.duration_s} s of load, ${s.workers} workers, seed ${s.seed}`,
  );
  out.push('');
  out.push(`operations: ${s.operations.total}`);
  row(['', ...CLASSES]);
  for (const [op, c] of Object.entries(s.operations.by_kind)) row([op, ...CLASSES.map((k) => c[k])]);
  const refusals = Object.entries(s.operations.refusals).sort((a, b) => b[1] - a[1]);
  out.push(`refusals: ${refusals.map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`);
  out.push(`5xx other than 503 STORE_UNAVAILABLE: ${s.server_errors}`);
  for (const b of s.server_error_samples)
    out.push(`  ${b.method} ${b.path} on instance ${b.instance}: ${b.status} ${b.body.slice(0, 200)}`);
  out.push(`answers carrying the secret: ${s.secret_in_responses}`);
  out.push('');
  const c = s.crashes;
  out.push(
    `crashes survived: ${c.instances_killed} instances SIGKILLed, ${c.plans_killed} plans killed, ` +
      `${c.plans_and_supervisors_killed} plans killed with their supervisors, ${c.supervisors_killed} supervisors killed, ` +
      `${c.db_restarts} database restarts (${c.faults_without_target} faults found nothing to hit)`,
  );
  out.push(`instances that died on their own: ${c.instances_died_on_their_own}`);
  for (const u of s.unexpected_exits) out.push(`  instance ${u.instance} exit ${u.code}:\n${u.tail}`);
  out.push(
    `settle: ${s.settle.settled ? 'settled' : 'DID NOT SETTLE'} in ${s.settle.seconds} s` +
      ` (${s.settle.slot_holders_resolved} unknown holders of the slot resolved)`,
  );
  out.push('');
  const k = s.invariants.checked;
  out.push(
    `invariants (SPEC §8) over ${k.deployments} deployments, ${k.attempts} attempts, ${k.events} events: ` +
      `${s.invariants.violations} violations` +
      (s.invariants.violations ? ` (${fmt(s.invariants.by_kind)})` : ''),
  );
  for (const d of s.invariants.details) out.push(`  ${d}`);
  const o = s.outcomes;
  out.push(
    `attempts: ${o.attempts}; ${o.recovered} recovered (ended from their run dir after a crash), ` +
      `${o.late_results} corrected by a late result, ${o.still_unknown} still unknown` +
      (o.still_unknown ? ` (${fmt(o.unknown_by_reason)})` : ''),
  );
  out.push(`  by final state/reason: ${fmt(o.by_state_and_reason)}`);
  out.push(`deployments by state: ${fmt(o.deployments_by_state)}`);
  const x = s.checks;
  out.push(
    `stopped attempts with nothing left alive: ${x.stopped_attempts_checked} checked (${x.stubborn_stopped} stubborn); ` +
      `retries not before due on the database's clock: ${x.retries.checked} checked, ` +
      `${x.retries.by_skewed_instance} started by instance ${s.skew.instance} (clock ${s.skew.offset_ms} ms off)`,
  );
  const h = x.webhook;
  out.push(
    `webhook: ${h.deliveries} deliveries, ${h.delivered} events in order, ${h.redelivered} redelivered ` +
      `after a lost cursor write, ${h.refused_by_receiver} refused by the receiver (503)`,
  );
  const g = s.gates;
  out.push(
    `stacks: ${g.stacks.checked} (${fmt(g.stacks.by_state) || 'none'}); runs: ${g.runs.checked} ` +
      `(${fmt(g.runs.by_kind_and_state) || 'none'}), ${g.runs.units_launched} unit launches`,
  );
  out.push(
    `gates: ${g.slots.grants} slot grants on a key of limit ${g.slots.limit} (at most ${g.slots.most_held} held), ` +
      `${g.slots.waited} waited for the slot, ${g.freezes.attempts_held} held by a freeze, ` +
      `${g.approvals.granted} approved, ${g.approvals.rejected} rejected, ${g.approvals.expired} approvals expired`,
  );
  out.push('');
  out.push(s.ok ? 'result: OK' : 'result: FAILED');
  console.log(out.join('\n'));
  console.log(`CHAOS_SUMMARY ${JSON.stringify(s)}`);
}

const fmt = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
