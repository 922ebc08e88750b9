// The chaos run's final verdict over one snapshot of the database taken after everything settled and
// every instance stopped: the SPEC §8 invariants, each violation counted and described instead of
// stopping at the first. §8.1–§8.3 and the attempt histories come from test/helpers/invariants.ts,
// run per deployment and per attempt; §8.4, §8.5, §8.7 and §8.9 are checked here against the run
// dirs and the secret's value. (§8.6 and §8.8 need to know which request was refused or stale: the
// test suites cover them; here they show up only as fold or history violations.)
import { isAlive } from '../src/runner/identity.ts';
import { readExit, readProcess } from '../src/runner/rundir.ts';
import type { AttemptsTable, EventsTable } from '../src/store/schema.ts';
import {
  eventsByAttempt,
  expectAttemptHistories,
  expectStoreInvariants,
  isActive,
  isFinal,
  type StoreSnapshot,
} from '../test/helpers/invariants.ts';

export interface Verdict {
  checked: { deployments: number; attempts: number; events: number };
  violations: string[];
}

function attemptOf(fn: () => void, what: string, out: string[]): void {
  try {
    fn();
  } catch (err) {
    out.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** Events renumbered 1..n in their order: the per-deployment fold needs the order, not the numbers. */
const renumber = (evs: EventsTable[]) => evs.map((e, i) => ({ ...e, seq: i + 1 }));

export function verify(s: StoreSnapshot, secret: string, serverOutput: string): Verdict {
  const v: string[] = [];
  // §8.3: seq 1..N over the whole log.
  attemptOf(() => expectStoreInvariants({ deployments: [], attempts: [], events: s.events }), '§8.3 seq', v);

  // §8.1 and §8.2, deployment by deployment.
  const evsOf = new Map<string, EventsTable[]>();
  for (const e of s.events) {
    if (e.deployment_id === null) continue;
    let l = evsOf.get(e.deployment_id);
    if (!l) evsOf.set(e.deployment_id, (l = []));
    l.push(e);
  }
  const attsOf = new Map<string, AttemptsTable[]>();
  for (const a of s.attempts) {
    let l = attsOf.get(a.deployment_id);
    if (!l) attsOf.set(a.deployment_id, (l = []));
    l.push(a);
  }
  for (const d of s.deployments) {
    attemptOf(
      () =>
        expectStoreInvariants({
          deployments: [d],
          attempts: attsOf.get(d.id) ?? [],
          events: renumber(evsOf.get(d.id) ?? []),
        }),
      `§8.1/§8.2 deployment ${d.name}`,
      v,
    );
  }

  // Attempt histories (SPEC §3: one attempt_start, one attempt_end, chained transitions) and §8.7.
  const byAttempt = eventsByAttempt(s);
  for (const a of s.attempts) {
    const evs = byAttempt.get(a.id) ?? [];
    attemptOf(
      () => expectAttemptHistories({ deployments: [], attempts: [a], events: evs }),
      `history of attempt ${a.id}`,
      v,
    );
    for (const e of evs) {
      if (e.type !== 'state_transition') continue;
      const t = JSON.parse(e.data);
      if (t.entity !== 'attempt' || t.from === null) continue;
      if (isFinal(t.from))
        v.push(`§8.7 attempt ${a.id}: final ${t.from} overwritten by ${t.to} (seq ${e.seq})`);
      if (t.from === 'unknown' && t.trigger !== 'late_result')
        v.push(`§8.7 attempt ${a.id}: unknown left by ${t.trigger}, not by a late result (seq ${e.seq})`);
    }

    // §8.4: nothing `running` without a live, identity-verified process.
    if (a.state === 'running') {
      const id = a.run_dir ? readProcess(a.run_dir) : null;
      if (!id || !isAlive(id)) v.push(`§8.4 attempt ${a.id} is running but its process is not alive`);
    }
    // §8.5: an exit record on disk means the outcome is known once recovery ran.
    if (a.state === 'unknown' && a.run_dir && readExit(a.run_dir) !== null)
      v.push(`§8.5 attempt ${a.id} is unknown (${a.reason}) but its exit record is on disk`);
  }

  // §8.9: the secret param's value appears in no event (log lines included) and no server log line.
  const leaked = s.events.filter((e) => e.data.includes(secret));
  if (leaked.length > 0)
    v.push(
      `§8.9 the secret appears in ${leaked.length} events (first: seq ${leaked[0].seq} ${leaked[0].type})`,
    );
  if (serverOutput.includes(secret)) v.push('§8.9 the secret appears in a server log');

  return {
    checked: { deployments: s.deployments.length, attempts: s.attempts.length, events: s.events.length },
    violations: v,
  };
}

/** What became of the attempts: by final state and reason, recovered or not. */
export function outcomes(s: StoreSnapshot) {
  const byState: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  const unknownByReason: Record<string, number> = {};
  const deployments: Record<string, number> = {};
  let recovered = 0;
  let lateResults = 0;
  let active = 0;
  for (const a of s.attempts) {
    byState[a.state] = (byState[a.state] ?? 0) + 1;
    const r = `${a.state}/${a.reason ?? '-'}`;
    byReason[r] = (byReason[r] ?? 0) + 1;
    if (a.state === 'unknown') unknownByReason[a.reason ?? '-'] = (unknownByReason[a.reason ?? '-'] ?? 0) + 1;
    if (a.recovered) recovered++;
    if (a.reason === 'late_result') lateResults++;
    if (isActive(a.state)) active++;
  }
  for (const d of s.deployments) deployments[d.state] = (deployments[d.state] ?? 0) + 1;
  return {
    attempts: s.attempts.length,
    by_state: byState,
    by_state_and_reason: byReason,
    recovered,
    late_results: lateResults,
    still_unknown: byState.unknown ?? 0,
    unknown_by_reason: unknownByReason,
    still_active: active,
    deployments_by_state: deployments,
  };
}
