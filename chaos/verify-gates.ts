// The chaos run's verdict on stacks and gates (SPEC §12.4, §13.4: invariants 10, 11 and 12), over the
// settled snapshot, with the checkers the model-based test uses (test/helpers/stack-invariants.ts): each
// stack's state is the fold of its events and the §12.3 function of its units; each run's state is its
// fold, it ended, and it launched each unit at most once and in order; the slots the events grant never
// exceed the limit at any commit (seq order is commit order) and equal the slots held; nobody waits
// behind a holder that ended; and once settled, nothing waits at all.
import { stackStateOf } from '../src/domain/stack-state.ts';
import type { DeploymentState } from '../src/domain/types.ts';
import {
  expectRunFolds,
  expectRunLaunches,
  expectSlots,
  expectStackFolds,
  type GateSnapshot,
} from '../test/helpers/stack-invariants.ts';
import { SLOT_KEY, SLOT_LIMIT } from './gated.ts';

export interface GateChecks {
  stacks: { checked: number; by_state: Record<string, number> };
  runs: { checked: number; by_kind_and_state: Record<string, number>; units_launched: number };
  slots: { grants: number; waited: number; most_held: number; limit: number };
  approvals: { granted: number; rejected: number; expired: number };
  freezes: { attempts_held: number };
}

function check(fn: () => void, what: string, v: string[]): void {
  try {
    fn();
  } catch (err) {
    v.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
  }
}

const dataOf = (d: unknown) => (typeof d === 'string' ? JSON.parse(d) : d) as Record<string, unknown>;
const limitOf = (key: string) => (key === SLOT_KEY ? SLOT_LIMIT : Number.POSITIVE_INFINITY);

export function verifyGates(s: GateSnapshot, v: string[]): GateChecks {
  check(() => expectStackFolds(s), '§12.4 stack fold', v);
  check(() => expectRunFolds(s), '§12.4 run fold', v);
  check(() => expectRunLaunches(s), '§12.4 run launches', v);
  check(() => expectSlots(s, limitOf), '§13.4 slots', v);

  const stackStates: Record<string, number> = {};
  for (const st of s.stacks) {
    stackStates[st.state] = (stackStates[st.state] ?? 0) + 1;
    const units = s.deployments.filter((d) => d.stack_id === st.id).map((d) => d.state as DeploymentState);
    const run = st.active_run_id ? s.runs.find((r) => r.id === st.active_run_id) : undefined;
    if (st.active_run_id) v.push(`§12.4 stack ${st.name} still has an active run ${st.active_run_id}`);
    const want = stackStateOf(run ? (run.kind as 'deploy' | 'teardown') : null, units);
    if (want !== st.state)
      v.push(`§12.3 stack ${st.name} is ${st.state}, its units [${units.join(', ')}] make it ${want}`);
  }
  const runStates: Record<string, number> = {};
  for (const r of s.runs) {
    const k = `${r.kind}/${r.state}`;
    runStates[k] = (runStates[k] ?? 0) + 1;
    if (r.ended_at === null || r.state === 'queued' || r.state === 'running')
      v.push(`§12.4 run ${r.id} (${r.kind}) never ended: ${r.state}`);
  }
  // Nothing is left waiting once everything settled (a waiting attempt keeps its deployment busy).
  for (const w of s.waits.filter((x) => x.opened_at === null))
    v.push(`§13 attempt ${w.attempt_id} still waits on ${w.gate} ${w.key ?? ''} after the settle`);

  // Figures: what the gates did.
  let grants = 0;
  let waited = 0;
  let frozen = 0;
  let granted = 0;
  let mostHeld = 0;
  const held = new Set<string>();
  for (const e of s.events) {
    const d = dataOf(e.data);
    if (e.type === 'gate_waiting' && d.gate === 'concurrency') waited++;
    else if (e.type === 'gate_waiting' && d.gate === 'freeze') frozen++;
    else if (e.type === 'approval_granted') granted++;
    else if (e.type === 'gate_opened' && d.gate === 'concurrency') {
      grants++;
      held.add(e.attempt_id!);
      mostHeld = Math.max(mostHeld, held.size);
    } else if (e.type === 'attempt_end' && typeof d.released_slot === 'string') held.delete(e.attempt_id!);
    else if (e.type === 'state_transition' && d.entity === 'deployment' && d.trigger === 'resolved')
      for (const a of s.attempts) if (a.deployment_id === e.deployment_id) held.delete(a.id);
  }
  const launched = s.events.filter(
    (e) =>
      e.type === 'state_transition' &&
      dataOf(e.data).entity === 'deployment' &&
      /^stack run /.test(String(dataOf(e.data).reason ?? '')),
  ).length;
  return {
    stacks: { checked: s.stacks.length, by_state: stackStates },
    runs: { checked: s.runs.length, by_kind_and_state: runStates, units_launched: launched },
    slots: { grants, waited, most_held: mostHeld, limit: SLOT_LIMIT },
    approvals: {
      granted,
      rejected: s.attempts.filter((a) => a.reason === 'rejected').length,
      expired: s.attempts.filter((a) => a.reason === 'approval_expired').length,
    },
    freezes: { attempts_held: frozen },
  };
}
