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
import { isStopped, leftoversOf } from './leftovers.ts';
import type { Delivery } from './receiver.ts';

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

/** What the run knows beside the database: the instances' clocks and the webhook's deliveries. */
export interface RunRecord {
  /** Each instance's data dir and its clock offset (ms ahead of the database's clock). */
  clocks: { dataDir: string; offsetMs: number }[];
  deliveries: Delivery[];
  hookEvents: readonly string[];
}

export interface Extras {
  retries: { checked: number; by_skewed_instance: number };
  webhook: { deliveries: number; delivered: number; redelivered: number; refused_by_receiver: number };
  stopped_attempts_checked: number;
  /** Of those, the stubborn ones (a child that ignored SIGTERM had to be stopped). */
  stubborn_stopped: number;
}

/**
 * Issue 17's checks over the snapshot: nothing of a stopped attempt alive, retries never started
 * before due on the database's clock (also by a skewed instance), webhooks delivered in order, each
 * once but for the last one redelivered after a lost cursor write, all signed, none missing.
 */
export function verifyExtras(s: StoreSnapshot, run: RunRecord, v: string[]): Extras {
  // Stopped means stopped: checked after every instance stopped, before the run kills leftovers.
  let stopped = 0;
  let stubborn = 0;
  for (const a of s.attempts) {
    if (!isStopped(a.state, a.reason)) continue;
    stopped++;
    if (a.params.includes('"stubborn":true')) stubborn++;
    const left = leftoversOf(a.id, a.run_dir);
    if (left.length > 0)
      v.push(`leftover: attempt ${a.id} is ${a.state}/${a.reason} but pids ${left.join(',')} of it live on`);
  }
  return {
    retries: verifyRetries(s, run, v),
    webhook: verifyWebhook(s, run, v),
    stopped_attempts_checked: stopped,
    stubborn_stopped: stubborn,
  };
}

/**
 * A retry attempt's queued_at is its creator's clock (read after the due check, in the same
 * transaction); minus that instance's offset it is on the database's clock, and must not be before
 * the `at` of the retry_scheduled it consumed (the last one of its deployment before its creation).
 */
function verifyRetries(s: StoreSnapshot, run: RunRecord, v: string[]) {
  const created = new Map<string, number>();
  const schedules = new Map<string, EventsTable[]>();
  for (const e of s.events) {
    if (e.type === 'retry_scheduled' && e.deployment_id) {
      let l = schedules.get(e.deployment_id);
      if (!l) schedules.set(e.deployment_id, (l = []));
      l.push(e);
    } else if (e.type === 'state_transition' && e.attempt_id) {
      const t = JSON.parse(e.data);
      if (t.entity === 'attempt' && t.from === null) created.set(e.attempt_id, e.seq);
    }
  }
  let checked = 0;
  let skewed = 0;
  for (const a of s.attempts) {
    if (a.requested_by !== 'retry') continue;
    const seq = created.get(a.id);
    const sched = (schedules.get(a.deployment_id) ?? [])
      .filter((e) => seq !== undefined && e.seq < seq)
      .pop();
    const clock = run.clocks.find((c) => a.run_dir?.startsWith(c.dataDir + '/'));
    if (!sched || !clock) {
      v.push(`retry: attempt ${a.id} has no retry_scheduled before it, or no known creator`);
      continue;
    }
    const due = JSON.parse(sched.data) as { at: string; number: number };
    const queued = Date.parse(a.queued_at) - clock.offsetMs;
    checked++;
    if (clock.offsetMs !== 0) skewed++;
    if (Number(a.retry_number) !== due.number)
      v.push(`retry: attempt ${a.id} is retry ${a.retry_number} but consumed schedule ${due.number}`);
    if (queued < Date.parse(due.at))
      v.push(
        `retry: attempt ${a.id} started ${Date.parse(due.at) - queued} ms before due ` +
          `(db clock ${new Date(queued).toISOString()}, due ${due.at}, creator's offset ${clock.offsetMs} ms)`,
      );
  }
  // And none left waiting long past due (by the end every instance had been up for the settle).
  for (const d of s.deployments)
    if (d.retry_at && Date.parse(d.retry_at) < Date.now() - 10_000)
      v.push(`retry: ${d.name}'s retry ${d.retry_number} was due at ${d.retry_at} and never started`);
  return { checked, by_skewed_instance: skewed };
}

/**
 * One deliverer at a time moving a cursor in seq order: each delivery answered 2xx is the next
 * selected event after the highest delivered so far, or that highest one again (its cursor write was
 * lost to a crash or a lapse); anything older again means two deliverers or a cursor moved back.
 * At the end every selected event was delivered.
 */
function verifyWebhook(s: StoreSnapshot, run: RunRecord, v: string[]) {
  const selected = s.events.filter((e) => run.hookEvents.includes(e.type)).map((e) => e.seq);
  const next = new Map<number, number>();
  for (let i = 0; i < selected.length; i++) next.set(i === 0 ? 0 : selected[i - 1], selected[i]);
  let high = 0;
  let delivered = 0;
  let redelivered = 0;
  let refused = 0;
  const say = (msg: string) => {
    if (v.filter((x) => x.startsWith('webhook:')).length < 5) v.push(`webhook: ${msg}`);
  };
  for (const d of run.deliveries) {
    if (!d.valid) {
      say(`delivery of seq ${d.seq} has no valid signature or webhook-id`);
      continue;
    }
    if (d.status >= 300) {
      refused++;
      if (d.seq !== high && d.seq !== next.get(high))
        say(`seq ${d.seq} sent when ${high} was the last delivered`);
      continue;
    }
    if (d.seq === high) redelivered++;
    else if (d.seq > high) {
      if (d.seq !== next.get(high)) say(`seq ${d.seq} delivered after ${high}: ${next.get(high)} skipped`);
      delivered++;
      high = d.seq;
    } else say(`seq ${d.seq} delivered again after ${high} (out of order)`);
  }
  const last = selected.at(-1) ?? 0;
  if (high !== last) say(`delivered up to seq ${high} of ${last}`);
  return { deliveries: run.deliveries.length, delivered, redelivered, refused_by_receiver: refused };
}
