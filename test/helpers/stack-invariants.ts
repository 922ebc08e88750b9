// Invariants 10, 11 and 12 (SPEC §12.4, §13.4) over one consistent snapshot of a store, whatever produced
// it (the model-based test, chaos): a stack's and a run's stored state are the folds of their events;
// a run launched each unit at most once, and only after the units it waits for ended (deploy: those it
// comes after; teardown: those that come after it); the slots the events grant never exceed a key's
// limit and equal the slots the store holds; and nobody waits for a key whose slots are free.
import type { Kysely } from 'kysely';
import { expect } from 'vitest';
import { foldRun, type RunStep } from '../../src/domain/stack-run.ts';
import { foldStack } from '../../src/domain/stack-state.ts';
import type {
  AttemptGatesTable,
  Database,
  EventsTable,
  GateSlotsTable,
  RunsTable,
  StacksTable,
} from '../../src/store/schema.ts';
import type { StoreSnapshot } from './invariants.ts';
import { foldSlots } from './gates.ts';

export interface GateSnapshot extends StoreSnapshot {
  stacks: StacksTable[];
  runs: RunsTable[];
  slots: GateSlotsTable[];
  waits: AttemptGatesTable[];
}

/** The extra tables, read after snapshotOf (callers make sure nothing writes meanwhile). */
export async function gateSnapshotOf(db: Kysely<Database>, base: StoreSnapshot): Promise<GateSnapshot> {
  return {
    ...base,
    stacks: await db.selectFrom('stacks').selectAll().execute(),
    runs: await db.selectFrom('runs').selectAll().execute(),
    slots: await db.selectFrom('gate_slots').selectAll().execute(),
    waits: await db.selectFrom('attempt_gates').selectAll().execute(),
  };
}

const parsed = (e: EventsTable) => ({
  ...e,
  data: (typeof e.data === 'string' ? JSON.parse(e.data) : e.data) as Record<string, unknown>,
});

/** Invariant 10: each stack's stored state is the fold of its stack `state_transition` events. */
export function expectStackFolds(s: GateSnapshot): void {
  for (const st of s.stacks) {
    const mine = s.events.filter((e) => e.stack_id === st.id).map(parsed);
    expect(foldStack(mine).state, `fold of stack ${st.name}`).toBe(st.state);
  }
}

/**
 * A run's state is the fold of its run `state_transition` events; its version moves on step updates too
 * (no event), so only an ended run's version is the last transition's.
 */
export function expectRunFolds(s: GateSnapshot): void {
  const all = s.events.map(parsed);
  for (const run of s.runs) {
    const mine = all.filter((e) => e.data.entity === 'run' && e.data.id === run.id);
    const fold = foldRun(mine);
    expect(fold.state, `fold of run ${run.id}`).toBe(run.state);
    if (run.ended_at !== null)
      expect(fold.version, `version of ended run ${run.id}`).toBe(Number(run.version));
    else expect(fold.version, `version of run ${run.id}`).toBeLessThanOrEqual(Number(run.version));
  }
}

/**
 * Invariant 11 from the events: each unit launched by a run (a deployment transition with reason
 * `stack run <id>`) at most once, naming the attempt its step names; and, in a deploy run, only after
 * every unit it comes after saw this run's attempt end (teardown: every unit that comes after it).
 */
export function expectRunLaunches(s: GateSnapshot): void {
  const all = s.events.map(parsed);
  for (const run of s.runs) {
    const stack = s.stacks.find((x) => x.id === run.stack_id)!;
    const spec = JSON.parse(stack.spec) as { units: { key: string; after?: string[] }[] };
    const steps = JSON.parse(run.steps) as RunStep[];
    const launchOf = new Map<string, { seq: number; attempt: string }>();
    for (const step of steps) {
      const launches = all.filter(
        (e) =>
          e.type === 'state_transition' &&
          e.data.entity === 'deployment' &&
          e.deployment_id === step.deployment_id &&
          e.data.reason === `stack run ${run.id}`,
      );
      expect(launches.length, `launches of ${step.key} by run ${run.id}`).toBeLessThanOrEqual(1);
      expect(launches[0]?.attempt_id ?? null, `attempt of ${step.key} in run ${run.id}`).toBe(
        step.attempt_id,
      );
      if (launches[0])
        launchOf.set(step.key, { seq: Number(launches[0].seq), attempt: launches[0].attempt_id! });
    }
    const endSeq = (attempt: string) =>
      all.find((e) => e.type === 'attempt_end' && e.attempt_id === attempt)?.seq ?? null;
    for (const unit of spec.units) {
      for (const dep of unit.after ?? []) {
        // deploy: `dep` ends before `unit` launches; teardown: `unit` ends before `dep` launches
        const [first, then] = run.kind === 'deploy' ? [dep, unit.key] : [unit.key, dep];
        const later = launchOf.get(then);
        if (!later) continue;
        const earlier = launchOf.get(first);
        if (!earlier) continue; // not a target of this run (ready / gone already)
        const end = endSeq(earlier.attempt);
        expect(end, `${first} ended before run ${run.id} launched ${then}`).not.toBeNull();
        expect(Number(end), `${first} ended before run ${run.id} launched ${then}`).toBeLessThan(later.seq);
      }
    }
  }
}

/**
 * Invariant 12: no key ever had more than its limit of holders (fold of the events), the fold's holders
 * are the store's slots, and no attempt waits for a key with a free slot whose holders all ended.
 */
export function expectSlots(
  s: GateSnapshot,
  limitOf: (key: string) => number,
  /** A freeze in force over these keys' plans: it holds a queue's head at a hand-over, the slot stays free. */
  frozen = false,
): void {
  const held = foldSlots(s.events, limitOf);
  const folded = [...held].flatMap(([key, set]) => [...set].map((a) => `${key} ${a}`)).sort();
  const stored = s.slots.map((x) => `${x.key} ${x.attempt_id}`).sort();
  expect(stored, 'slots held = fold of the events').toEqual(folded);
  const stateOf = new Map(s.attempts.map((a) => [a.id, a.state]));
  for (const w of s.waits) {
    if (w.gate !== 'concurrency' || w.opened_at !== null || stateOf.get(w.attempt_id) !== 'queued') continue;
    // held by another gate too (a freeze at a hand-over): the slot may stay free meanwhile
    const alsoHeld = s.waits.some(
      (o) => o.attempt_id === w.attempt_id && o.gate !== w.gate && o.opened_at === null,
    );
    if (alsoHeld) continue;
    const holders = s.slots.filter((x) => x.key === w.key);
    if (!frozen) {
      expect(holders.length, `${w.attempt_id} waits for ${w.key} while a slot is free`).toBe(limitOf(w.key!));
    }
    for (const h of holders) {
      const st = stateOf.get(h.attempt_id);
      // an ended holder frees its slot in its own transaction; only `unknown` keeps it (until settled)
      expect(
        ['queued', 'running', 'unknown'],
        `${w.attempt_id} waits behind ${h.attempt_id} (${st})`,
      ).toContain(st);
    }
  }
}
