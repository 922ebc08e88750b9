// The run planner of SPEC §12.4 against invariant 11: a run launches each unit at most once, never
// before every unit it comes after is `ready` (deploy) / every unit that comes after it is gone
// (teardown), always ends, and a second deploy run redeploys only what is not `ready`.
//
// A small world is simulated around the pure planner: random dependency graphs and unit states, unit
// attempts that end in random order with random outcomes, launches taken one at a time in random order
// (a crash between two launches is a re-decision on what was written), a cancel at a random moment.
// The expectations below are computed from the world, not from the planner's own steps.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideAdvance,
  decideRunCancel,
  decideRunStart,
  foldRun,
  planRun,
  RUN_TABLE,
  runMove,
  withLaunched,
  withRefused,
  type OnFailure,
  type RunKind,
  type RunOptions,
  type RunState,
  type RunStep,
  type RunUnit,
  type RunView,
  type UnitNow,
} from '../../src/domain/stack-run.ts';
import type { AttemptState, DeploymentState } from '../../src/domain/types.ts';

type End = 'succeeded' | 'failed' | 'cancelled' | 'unknown';

interface World {
  kind: RunKind;
  /** after[i]: the units (indices) unit i comes after; all smaller than i, so the graph is acyclic. */
  after: number[][];
  states: DeploymentState[];
  paramsChanged: boolean[];
  onFailure: OnFailure;
  options: RunOptions;
  /** The outcome of unit i's attempt, if it is launched. */
  outcomes: End[];
  /** Drives the order of things: which action, which launch, which attempt ends. */
  picks: number[];
  /** After how many actions a cancel is asked (beyond the run's length: never). */
  cancelAt: number;
}

const id = (i: number) => `dep_${i}`;
const idx = (depId: string) => Number(depId.slice(4));

function units(w: World): RunUnit[] {
  return w.after.map((a, i) => ({
    key: `u${i}`,
    index: null,
    deploymentId: id(i),
    state: w.states[i],
    paramsChanged: w.paramsChanged[i],
    after: a.map(id),
  }));
}

const GOAL: Record<RunKind, DeploymentState> = { deploy: 'ready', teardown: 'torn_down' };
const BUSY: Record<RunKind, DeploymentState> = { deploy: 'deploying', teardown: 'tearing_down' };

interface Result {
  state: RunState;
  steps: RunStep[];
  states: DeploymentState[];
  /** Units in launch order. */
  launched: number[];
  cancelled: boolean;
  /** The first moment (action count) an attempt ended failed or cancelled, and each launch's moment. */
  firstFailureAt: number;
  launchAt: number[];
  events: { type: string; data: { entity: string; to: RunState; version: number } }[];
}

/** Runs one planned run to its end in the world, checking invariant 11 at every launch. */
function simulate(w: World, planned: RunStep[]): Result {
  const states = [...w.states];
  const attempt = new Map<string, AttemptState>(); // attempt id -> state
  const run: RunView = {
    kind: w.kind,
    state: 'queued',
    onFailure: w.onFailure,
    cancelRequested: false,
    force: w.options.force === true,
    steps: planned,
  };
  let version = 1;
  const events: Result['events'] = [
    { type: 'state_transition', data: { entity: 'run', to: 'queued', version } },
  ];
  const launched: number[] = [];
  const launchAt: number[] = [];
  let firstFailureAt = Infinity;
  const n = w.after.length;
  const comesAfter = (i: number) => w.after.map((a, j) => (a.includes(i) ? j : -1)).filter((j) => j >= 0);

  const view = (): Map<string, UnitNow> =>
    new Map(
      w.after.map((a, i) => {
        const step = run.steps[i];
        const att = step.attempt_id ? attempt.get(step.attempt_id)! : null;
        return [id(i), { state: states[i], after: a.map(id), attempt: att }];
      }),
    );
  const write = (steps: RunStep[], change: { from: RunState | null; to: RunState } | null) => {
    run.steps = steps;
    version++;
    if (change) {
      expect(change.from).toBe(run.state);
      run.state = change.to;
      events.push({ type: 'state_transition', data: { entity: 'run', to: change.to, version } });
    }
  };

  for (let t = 0; ; t++) {
    if (t > 20 * n + 20) throw new Error('the run never ended');
    if (t === w.cancelAt && !run.cancelRequested) {
      const c = decideRunCancel({ state: run.state, cancelRequested: false });
      if (c.ok) run.cancelRequested = true;
    }
    const adv = decideAdvance(run, view());
    if (run.cancelRequested || (w.onFailure === 'stop' && firstFailureAt < Infinity)) {
      expect(adv.launch).toEqual([]);
    }
    const active = run.steps
      .map((s, i) => (s.attempt_id && attempt.get(s.attempt_id) === 'running' ? i : -1))
      .filter((i) => i >= 0);
    const pick = w.picks[t % w.picks.length] + t;
    const writeNow = adv.launch.length > 0 || adv.change !== null || adv.changed;
    if (!writeNow && active.length === 0) {
      throw new Error(`stuck: nothing to write, nothing running (${JSON.stringify(run)})`);
    }
    if (writeNow && (active.length === 0 || pick % 2 === 0)) {
      if (adv.launch.length === 0) {
        write(adv.steps, adv.change);
        if (run.state !== 'queued' && run.state !== 'running') break;
        continue;
      }
      // One launch per write, like the lifecycle: the unit's attempt and the run's CAS together.
      const l = adv.launch[pick % adv.launch.length];
      const i = idx(l.deploymentId);
      expect(launched).not.toContain(i);
      if (w.kind === 'deploy') {
        for (const b of w.after[i]) expect(states[b]).toBe('ready');
      } else {
        for (const b of comesAfter(i)) expect(['torn_down', 'pending']).toContain(states[b]);
      }
      expect(['deploying', 'tearing_down']).not.toContain(states[i]);
      expect(l.force).toBe(states[i] === 'unknown');
      const att = `att_${i}`;
      attempt.set(att, 'running');
      states[i] = BUSY[w.kind];
      launched.push(i);
      launchAt.push(t);
      write(withLaunched(adv.steps, l.deploymentId, att), adv.change);
      continue;
    }
    // An attempt ends, whatever the run does meanwhile.
    const i = active[pick % active.length];
    const end = w.outcomes[i];
    attempt.set(`att_${i}`, end);
    states[i] = end === 'succeeded' ? GOAL[w.kind] : end === 'unknown' ? 'unknown' : 'failed';
    if (end === 'failed' || end === 'cancelled') firstFailureAt = Math.min(firstFailureAt, t);
  }
  expect(foldRun(events)).toEqual({ state: run.state, version });
  return {
    state: run.state,
    steps: run.steps,
    states,
    launched,
    cancelled: run.cancelRequested,
    firstFailureAt,
    launchAt,
    events,
  };
}

const STATES: DeploymentState[] = ['pending', 'ready', 'failed', 'torn_down', 'unknown'];
const ENDS: End[] = ['succeeded', 'failed', 'cancelled', 'unknown'];

function arbWorld(
  kind: RunKind,
  opts: { ends?: fc.Arbitrary<End>; options?: fc.Arbitrary<RunOptions> } = {},
) {
  return fc.integer({ min: 1, max: 7 }).chain((n) =>
    fc.record({
      kind: fc.constant(kind),
      after: fc.tuple(...Array.from({ length: n }, (_, i) => fc.subarray([...Array(i).keys()]))),
      states: fc.array(fc.constantFrom(...STATES), { minLength: n, maxLength: n }),
      paramsChanged: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      onFailure: fc.constantFrom<OnFailure>('stop', 'continue'),
      options:
        opts.options ??
        fc.record(
          {
            all: fc.boolean(),
            force: fc.boolean(),
            units: fc.subarray([...Array(n).keys()].map((i) => `u${i}`)),
          },
          { requiredKeys: [] },
        ),
      outcomes: fc.array(opts.ends ?? fc.constantFrom(...ENDS), { minLength: n, maxLength: n }),
      picks: fc.array(fc.nat(1000), { minLength: 1, maxLength: 20 }),
      cancelAt: fc.nat(4 * n + 8),
    }),
  );
}

/**
 * The targets `i` transitively comes after (deploy) / that transitively come after `i` (teardown),
 * through targets only: a unit outside the run is ready (or gone) and holds nothing back.
 */
function holders(w: World, i: number, targets: Set<number>): Set<number> {
  const out = new Set<number>();
  const direct = (j: number) =>
    w.kind === 'deploy' ? w.after[j] : w.after.map((a, k) => (a.includes(j) ? k : -1)).filter((k) => k >= 0);
  const todo = [...direct(i)];
  while (todo.length > 0) {
    const j = todo.pop()!;
    if (out.has(j) || !targets.has(j)) continue;
    out.add(j);
    todo.push(...direct(j));
  }
  return out;
}

/** The deploy targets SPEC §12.4 names, computed apart from the planner. */
function expectedTargets(w: World): Set<number> {
  const n = w.after.length;
  const all = [...Array(n).keys()];
  if (w.kind === 'teardown')
    return new Set(all.filter((i) => !['torn_down', 'pending'].includes(w.states[i])));
  if (w.options.all) return new Set(all);
  const named = w.options.units ?? [];
  if (named.length === 0) return new Set(all.filter((i) => w.states[i] !== 'ready' || w.paramsChanged[i]));
  const out = new Set<number>();
  const visit = (i: number) => {
    if (out.has(i)) return;
    out.add(i);
    for (const b of w.after[i]) if (w.states[b] !== 'ready') visit(b);
  };
  for (const k of named) visit(Number(k.slice(1)));
  return out;
}

function checkRun(w: World): void {
  const planned = planRun(w.kind, units(w), w.options, { isAdmin: true });
  if (w.states.includes('unknown') && !w.options.force) {
    expect(planned).toMatchObject({ ok: false, refusal: { code: 'STACK_UNKNOWN_STATE' } });
    return;
  }
  if (!planned.ok) throw new Error(`refused: ${planned.refusal.detail}`);
  const targets = expectedTargets(w);
  expect(new Set(planned.steps.flatMap((s, i) => (s.step === 'waiting' ? [i] : [])))).toEqual(targets);
  for (const s of planned.steps) expect(['waiting', 'not_needed']).toContain(s.step);

  const r = simulate(w, planned.steps);
  // Only targets launch, each at most once (checked at each launch too).
  for (const i of r.launched) expect(targets.has(i)).toBe(true);
  expect(new Set(r.launched).size).toBe(r.launched.length);
  // Once a unit failed (stop) or a cancel was asked, nothing new launched.
  if (w.onFailure === 'stop') for (const t of r.launchAt) expect(t).toBeLessThanOrEqual(r.firstFailureAt);
  // Ended: nothing waiting or running, every step says what happened to its unit.
  for (const [i, s] of r.steps.entries()) {
    expect(['waiting', 'launched']).not.toContain(s.step);
    if (!targets.has(i)) expect(s.step).toBe('not_needed');
    else if (!r.launched.includes(i)) expect(s.step).toBe('skipped');
    else {
      const want = { [GOAL[w.kind]]: 'succeeded', failed: 'failed', unknown: 'unknown' }[r.states[i]];
      expect(s.step).toBe(want);
    }
  }
  // The end state, from the world.
  const launchedEnds = r.launched.map((i) => r.states[i]);
  const allDone = [...targets].every((i) => r.launched.includes(i) && r.states[i] === GOAL[w.kind]);
  const want: RunState = r.cancelled
    ? 'cancelled'
    : launchedEnds.includes('unknown')
      ? 'unknown'
      : allDone
        ? 'succeeded'
        : 'failed';
  expect(r.state).toBe(want);
  // With `continue` and nothing unknown or cancelled, everything not held back by a failure went on.
  if (w.onFailure === 'continue' && !r.cancelled && !launchedEnds.includes('unknown')) {
    for (const i of targets) {
      const blocked = [...holders(w, i, targets)].some((h) => r.states[h] !== GOAL[w.kind]);
      expect(r.launched.includes(i)).toBe(!blocked);
    }
  }
  // With `stop`, a run that saw no failure, cancel or unknown did everything.
  if (w.onFailure === 'stop' && want === 'succeeded') expect(r.launched.length).toBe(targets.size);
}

describe('stack run planner (SPEC §12.4, invariant 11)', () => {
  it('deploy runs: each unit launched at most once, never before what it comes after is ready, always ending', () => {
    fc.assert(
      fc.property(arbWorld('deploy'), (w) => checkRun(w)),
      { numRuns: 600 },
    );
  });

  it('teardown runs: each unit torn down at most once, only once what comes after it is gone', () => {
    fc.assert(
      fc.property(arbWorld('teardown', { options: fc.record({ force: fc.boolean() }) }), (w) => checkRun(w)),
      { numRuns: 600 },
    );
  });

  it('a second deploy run (the resume) redeploys only what is not ready, and then finishes', () => {
    fc.assert(
      fc.property(arbWorld('deploy', { options: fc.constant({ force: true }) }), (w) => {
        const first = planRun('deploy', units(w), w.options, { isAdmin: true });
        if (!first.ok) throw new Error(first.refusal.detail);
        const r = simulate(w, first.steps);
        // A unit deployed with success in the first run has its new params.
        const changed = w.paramsChanged.map(
          (c, i) => c && !(r.launched.includes(i) && r.states[i] === 'ready'),
        );
        const w2: World = {
          ...w,
          states: r.states,
          paramsChanged: changed,
          outcomes: w.outcomes.map(() => 'succeeded'),
          cancelAt: Infinity,
        };
        const second = planRun('deploy', units(w2), w2.options, { isAdmin: true });
        if (!second.ok) throw new Error(second.refusal.detail);
        for (const [i, s] of second.steps.entries()) {
          const needed = r.states[i] !== 'ready' || changed[i];
          expect(s.step).toBe(needed ? 'waiting' : 'not_needed');
        }
        const r2 = simulate(w2, second.steps);
        expect(r2.state).toBe('succeeded');
        expect(r2.states.every((s) => s === 'ready')).toBe(true);
        for (const i of r2.launched) expect(r.states[i] !== 'ready' || changed[i]).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('a deploy of some units takes what they need that is not ready, and nothing else', () => {
    // net <- template <- student-1, student-2 <- finalize (count expands student)
    const u = (key: string, index: number | null, state: DeploymentState, after: string[]): RunUnit => ({
      key,
      index,
      deploymentId: index ? `${key}-${index}` : key,
      state,
      paramsChanged: false,
      after,
    });
    const stack = [
      u('net', null, 'ready', []),
      u('template', null, 'failed', ['net']),
      u('student', 1, 'ready', ['net', 'template']),
      u('student', 2, 'pending', ['net', 'template']),
      u('finalize', null, 'pending', ['student-1', 'student-2']),
      u('other', null, 'failed', []),
    ];
    const planned = planRun('deploy', stack, { units: ['student'] }, { isAdmin: false });
    expect(planned.ok && planned.steps.map((s) => [s.deployment_id, s.step])).toEqual([
      ['net', 'not_needed'],
      ['template', 'waiting'],
      ['student-1', 'waiting'],
      ['student-2', 'waiting'],
      ['finalize', 'not_needed'],
      ['other', 'not_needed'],
    ]);
    expect(planRun('deploy', stack, { units: ['student', 'nope'] }, { isAdmin: false })).toEqual({
      ok: false,
      refusal: { code: 'VALIDATION', detail: 'no unit has the key "nope"', field: 'units[1]' },
    });
  });

  it('refuses a run over a unit with an active attempt, force without admin, and a second active run', () => {
    const one = (state: DeploymentState): RunUnit[] => [
      { key: 'a', index: null, deploymentId: 'a', state, paramsChanged: false, after: [] },
    ];
    expect(planRun('deploy', one('deploying'), {}, { isAdmin: true })).toMatchObject({
      ok: false,
      refusal: { code: 'ATTEMPT_IN_PROGRESS' },
    });
    expect(planRun('teardown', one('ready'), { force: true }, { isAdmin: false })).toMatchObject({
      ok: false,
      refusal: { code: 'FORBIDDEN', field: 'force' },
    });
    expect(planRun('teardown', one('unknown'), {}, { isAdmin: true })).toMatchObject({
      ok: false,
      refusal: { code: 'STACK_UNKNOWN_STATE' },
    });
    expect(decideRunStart('run_1')).toMatchObject({ ok: false, refusal: { code: 'STACK_RUN_IN_PROGRESS' } });
    expect(decideRunStart(null)).toEqual({ ok: true });
    expect(decideRunCancel(null)).toMatchObject({ ok: false, refusal: { code: 'NO_ACTIVE_RUN' } });
    expect(decideRunCancel({ state: 'failed', cancelRequested: false })).toMatchObject({
      ok: false,
      refusal: { code: 'NO_ACTIVE_RUN' },
    });
    expect(decideRunCancel({ state: 'running', cancelRequested: true })).toEqual({
      ok: true,
      action: 'already_requested',
    });
  });

  it('a unit whose launch was refused fails its step; with continue what is behind it is skipped', () => {
    const stack: RunUnit[] = [
      { key: 'a', index: null, deploymentId: 'a', state: 'pending', paramsChanged: false, after: [] },
      { key: 'b', index: null, deploymentId: 'b', state: 'pending', paramsChanged: false, after: ['a'] },
      { key: 'c', index: null, deploymentId: 'c', state: 'pending', paramsChanged: false, after: [] },
    ];
    const planned = planRun('deploy', stack, {}, { isAdmin: false });
    if (!planned.ok) throw new Error('refused');
    const now = new Map<string, UnitNow>(
      stack.map((u) => [u.deploymentId, { state: u.state, after: u.after, attempt: null }]),
    );
    const run: RunView = {
      kind: 'deploy',
      state: 'running',
      onFailure: 'continue',
      cancelRequested: false,
      force: false,
      steps: withRefused(planned.steps, 'a', 'plan gone'),
    };
    const adv = decideAdvance(run, now);
    expect(adv.steps.map((s) => s.step)).toEqual(['failed', 'skipped', 'waiting']);
    expect(adv.launch).toEqual([{ deploymentId: 'c', force: false }]);
    expect(adv.steps[0].detail).toBe('plan gone');
    // With stop, nothing more launches and the run ends failed.
    const stop = decideAdvance({ ...run, onFailure: 'stop' }, now);
    expect(stop.launch).toEqual([]);
    expect(stop.change).toEqual({
      from: 'running',
      to: 'failed',
      trigger: 'ended',
      reason: 'units failed: a',
    });
    expect(stop.steps.map((s) => s.step)).toEqual(['failed', 'skipped', 'skipped']);
  });

  it('an unknown unit blocks what comes after it; a check that settles it lets the run go on', () => {
    const stack: RunUnit[] = [
      { key: 'a', index: null, deploymentId: 'a', state: 'pending', paramsChanged: false, after: [] },
      { key: 'b', index: null, deploymentId: 'b', state: 'pending', paramsChanged: false, after: ['a'] },
    ];
    const planned = planRun('deploy', stack, {}, { isAdmin: false });
    if (!planned.ok) throw new Error('refused');
    const run: RunView = {
      kind: 'deploy',
      state: 'running',
      onFailure: 'continue',
      cancelRequested: false,
      force: false,
      steps: withLaunched(planned.steps, 'a', 'att_a'),
    };
    const lost = new Map<string, UnitNow>([
      ['a', { state: 'unknown', after: [], attempt: 'unknown' }],
      ['b', { state: 'pending', after: ['a'], attempt: null }],
    ]);
    const adv = decideAdvance(run, lost);
    expect(adv.launch).toEqual([]);
    expect(adv.change).toMatchObject({ to: 'unknown', reason: 'units unknown: a' });
    expect(adv.steps.map((s) => s.step)).toEqual(['unknown', 'skipped']);
    // Settled by a check (unknown -> ready) before the run wrote its end: b launches.
    const checked = new Map(lost).set('a', { state: 'ready', after: [], attempt: 'unknown' });
    expect(decideAdvance(run, checked).launch).toEqual([{ deploymentId: 'b', force: false }]);
  });

  it('a ready unit whose params changed is redeployed before what comes after it launches', () => {
    const stack: RunUnit[] = [
      { key: 'db', index: null, deploymentId: 'db', state: 'ready', paramsChanged: true, after: [] },
      { key: 'app', index: null, deploymentId: 'app', state: 'pending', paramsChanged: false, after: ['db'] },
    ];
    const planned = planRun('deploy', stack, {}, { isAdmin: false });
    if (!planned.ok) throw new Error('refused');
    const now = new Map<string, UnitNow>(
      stack.map((u) => [u.deploymentId, { state: u.state, after: u.after, attempt: null }]),
    );
    const adv = decideAdvance(
      {
        kind: 'deploy',
        state: 'queued',
        onFailure: 'stop',
        cancelRequested: false,
        force: false,
        steps: planned.steps,
      },
      now,
    );
    expect(adv.launch).toEqual([{ deploymentId: 'db', force: false }]);
    expect(adv.change).toEqual({ from: 'queued', to: 'running', trigger: 'started', reason: null });
  });

  it('a run with nothing to do ends succeeded at once', () => {
    const stack: RunUnit[] = [
      { key: 'a', index: null, deploymentId: 'a', state: 'ready', paramsChanged: false, after: [] },
    ];
    const planned = planRun('deploy', stack, {}, { isAdmin: false });
    if (!planned.ok) throw new Error('refused');
    const adv = decideAdvance(
      {
        kind: 'deploy',
        state: 'queued',
        onFailure: 'stop',
        cancelRequested: false,
        force: false,
        steps: planned.steps,
      },
      new Map([['a', { state: 'ready', after: [], attempt: null }]]),
    );
    expect(adv.change).toEqual({ from: 'queued', to: 'succeeded', trigger: 'ended', reason: null });
  });

  it('the run transition table is the one of SPEC §12.4, and nothing else passes', () => {
    const states: (RunState | null)[] = [
      null,
      'queued',
      'running',
      'succeeded',
      'failed',
      'cancelled',
      'unknown',
    ];
    const allowed = new Set([
      'accepted:null>queued',
      'started:queued>running',
      ...['queued', 'running'].flatMap((f) => [
        `ended:${f}>succeeded`,
        `ended:${f}>failed`,
        `ended:${f}>unknown`,
        `cancelled:${f}>cancelled`,
      ]),
    ]);
    for (const trigger of Object.keys(RUN_TABLE) as (keyof typeof RUN_TABLE)[]) {
      for (const from of states) {
        for (const to of states) {
          if (to === null) continue;
          const key = `${trigger}:${from}>${to}`;
          if (allowed.has(key))
            expect(runMove(trigger, from, to, null)).toEqual({ from, to, trigger, reason: null });
          else expect(() => runMove(trigger, from, to, null)).toThrow(/table violated/);
        }
      }
    }
    expect(() =>
      foldRun([{ type: 'state_transition', data: { entity: 'run', to: 'running', version: 1 } }]),
    ).toThrow(/do not fold/);
  });
});
