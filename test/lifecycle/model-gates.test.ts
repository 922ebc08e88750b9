// Model-based test of gates and stacks (SPEC §12.4, §13; invariants 10, 11, 12), beside model.test.ts
// (which keeps its own, ungated plans): random sequences over three deployments sharing one
// concurrency key of limit 1, a freeze made and lifted through the API, a deployment whose plan needs an
// approval (approved by another token, refused to its requester, or rejected), and a two-unit stack
// deployed, torn down and cancelled by runs. The model predicts who holds the slot (queue order; a
// freeze holds new attempts, and on its lift they queue in the order they came), each deployment's state
// and each attempt's state and gate; after every command the store must agree and the invariants hold
// (fold = stored state for deployments, stacks and runs; launches once and in order; slots = fold, never
// over the limit, nobody waiting behind an ended holder). LIFELINE_MODEL_GATE_RUNS sets the number of
// random runs on SQLite (default 8; 40 under LIFELINE_TEST_FULL=1; Postgres runs half of it).
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tellCtl } from '../helpers/fifo.ts';
import type {
  Actor,
  AttemptKind,
  AttemptReason,
  AttemptState,
  DeploymentState,
} from '../../src/domain/types.ts';
import { isActiveRun } from '../../src/domain/stack-run.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import {
  dialectConfig,
  DIALECTS,
  FIXTURES,
  quietLogger,
  tempDir,
  type TestDialect,
} from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';
import {
  expectRunFolds,
  expectRunLaunches,
  expectSlots,
  expectStackFolds,
  gateSnapshotOf,
} from '../helpers/stack-invariants.ts';

const RUNS = Number(process.env.LIFELINE_MODEL_GATE_RUNS ?? scaled(8, 40));
const runsOn = (dialect: TestDialect) => (dialect === 'sqlite' ? RUNS : Math.ceil(RUNS / 2));

const ADMIN: Actor = { name: 'alice', role: 'admin' };
const OPER: Actor = { name: 'ci', role: 'operator' };
const OTHER: Actor = { name: 'bob', role: 'operator' };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const AUTH = {
  tokens: [ADMIN, OPER, OTHER].map((a) => ({ name: a.name, role: a.role, token_sha256: sha(a.name) })),
};

const GATED = ['g1', 'g2', 'g3'] as const;
const APPR = 'p';
const STACK = 's';
const KEY = 'shared';
const FREEZE = 'hold';
const ctl = [path.join(FIXTURES, 'ctl.sh')];
const unit = [path.join(FIXTURES, 'stack-unit.sh')];
const PLANS = {
  shared: { deploy: ctl, teardown: ctl, cancel_grace: '1s', concurrency: { key: KEY, limit: 1 } },
  appr: { deploy: ctl, teardown: ctl, cancel_grace: '1s', approval: { deploy: true, teardown: true } },
  unit: { deploy: unit, teardown: unit, cancel_grace: '1s' },
};

// ---- The model ----

/** What holds a queued attempt: an approval, or the slot (a freeze or the concurrency queue; the store
 * may record both, see GExit). */
type Gate = 'slot' | 'approval' | null;
interface MAttempt {
  id: string;
  kind: AttemptKind;
  state: AttemptState;
  reason: AttemptReason | null;
  /** The gate holding it while queued. */
  gate: Gate;
}
interface MDep {
  id: string;
  name: string;
  state: DeploymentState;
  current: MAttempt | null;
  /** Its state before its current attempt: where a rejected (never started) attempt leaves it. */
  before: DeploymentState;
}
interface Model {
  deps: Map<string, MDep>;
  /** Who holds the one slot of KEY, who waits for it (queue order), who waits for the freeze. */
  holder: string | null;
  queue: string[];
  frozenQueue: string[];
  frozen: boolean;
  stackId: string;
  /** The stack's active run as last seen (runs are followed through the store, their folds checked). */
  activeRun: string | null;
}
interface Real {
  engine: Lifeline;
  dir: string;
  dialect: TestDialect;
}

/** What the runs exercised, so the test fails when the generator stops reaching a path. */
const nothingSeen = () => ({
  queued: 0,
  handedOver: 0,
  frozenThenLifted: 0,
  approved: 0,
  selfRefused: 0,
  rejected: 0,
  runs: 0,
  runsCancelled: 0,
  unitsLaunched: 0,
});
let seen = nothingSeen();

const busy = (s: DeploymentState) => s === 'deploying' || s === 'tearing_down';

function afterEnd(kind: AttemptKind, state: AttemptState): DeploymentState {
  if (state !== 'succeeded') return 'failed';
  return kind === 'deploy' ? 'ready' : 'torn_down';
}

/** Tells a ctl.sh / stack-unit.sh process to exit with rc (through its workspace's FIFO). */
async function tellExit(r: Real, depId: string, rc: number): Promise<void> {
  await tellCtl(r.dir, depId, rc);
}

async function until(r: Real, what: string, cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await r.engine.settle();
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 10));
  }
}

/** What the model says the store shows, and what it shows: deployment and attempt states, gates. */
async function views(m: Model, r: Real) {
  const want: Record<string, unknown> = {};
  const got: Record<string, unknown> = {};
  for (const d of m.deps.values()) {
    want[d.name] = [d.state, d.current && [d.current.state, d.current.reason, d.current.gate]];
    const dep = await r.engine.getDeployment(d.name);
    let att: unknown = null;
    if (d.current) {
      const a = await r.engine.getAttempt(d.current.id);
      const gate = a.waiting.some((w) => w.gate === 'approval')
        ? 'approval'
        : a.waiting.length
          ? 'slot'
          : null;
      att = [a.state, a.reason, a.state === 'queued' ? gate : null];
    }
    got[d.name] = [dep.state, att];
  }
  return { want, got };
}

async function checkInvariants(m: Model, r: Real): Promise<void> {
  // The engine acts on commits asynchronously (a hand-over, a run's next unit): wait until the store
  // agrees with the model, then compare (so a disagreement fails with both sides shown).
  try {
    await until(r, 'the store to agree with the model', async () => {
      const { want, got } = await views(m, r);
      return JSON.stringify(want) === JSON.stringify(got);
    });
  } catch {
    const { want, got } = await views(m, r);
    expect(got, 'store vs model').toEqual(want);
  }
  // One snapshot (runs advance on their own commits meanwhile): a repeatable-read transaction on Postgres.
  const db = r.engine.store.db;
  const read = (trx: typeof db) => snapshotOf(trx).then((base) => gateSnapshotOf(trx, base));
  const snap =
    r.dialect === 'postgres'
      ? await db.transaction().setIsolationLevel('repeatable read').execute(read)
      : await db.transaction().execute(read);
  expectStoreInvariants(snap);
  expectAttemptHistories(snap);
  expectStackFolds(snap);
  expectRunFolds(snap);
  expectRunLaunches(snap);
  expectSlots(snap, (key) => (key === KEY ? 1 : Infinity), m.frozen);
}

type Cmd = fc.AsyncCommand<Model, Real>;

/**
 * Runs a call the model says must be refused with `code`; nothing such a call writes may appear: no
 * attempt, no run, no event only a request writes (creation, cancel, approval, a rejection's end).
 * Units, slot holders and runs that go on meanwhile write their own starts, ends, outputs and gate
 * events (the model waits for states, not for those), so those are not counted.
 */
async function refused(r: Real, code: string, call: () => Promise<unknown>): Promise<void> {
  const before = await requestWrites(r);
  await expect(call()).rejects.toMatchObject({ code });
  expect(await requestWrites(r), `nothing written by a refused ${code}`).toEqual(before);
}

/** What only a request writes: attempts outside the stack, runs, and creation, cancel, approval and rejection events. */
async function requestWrites(r: Real): Promise<{ events: number; attempts: number; runs: number }> {
  const ofRequests = new Set([
    'deployment_created',
    'deployment_deleted',
    'cancel_requested',
    'approval_granted',
  ]);
  const db = r.engine.store.db;
  const events = (await db.selectFrom('events').select(['type', 'data']).execute()).filter((e) => {
    if (ofRequests.has(e.type)) return true;
    const data = typeof e.data === 'string' ? (JSON.parse(e.data) as Record<string, unknown>) : e.data;
    return e.type === 'attempt_end' && (data as Record<string, unknown>).reason === 'rejected';
  }).length;
  // a run launches its units' attempts by itself: only the attempts of deployments outside the stack
  const attempts = (
    await db
      .selectFrom('attempts as a')
      .innerJoin('deployments as d', 'd.id', 'a.deployment_id')
      .select('a.id')
      .where('d.stack_id', 'is', null)
      .execute()
  ).length;
  const runs = (await db.selectFrom('runs').select('id').execute()).length;
  return { events, attempts, runs };
}

/** A deploy or teardown of a gated deployment: it runs, queues for the slot, or waits for the freeze. */
class GStart implements Cmd {
  constructor(
    readonly name: string,
    readonly kind: AttemptKind,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const call =
      this.kind === 'deploy'
        ? () => r.engine.startDeploy(d.name, {}, OPER)
        : () => r.engine.teardown(d.name, { confirm: d.name }, OPER);
    if (busy(d.state)) await refused(r, 'ATTEMPT_IN_PROGRESS', call);
    else if (this.kind === 'teardown' && d.state === 'torn_down') await refused(r, 'ALREADY_TORN_DOWN', call);
    else {
      const a = await call();
      d.before = d.state;
      d.state = this.kind === 'deploy' ? 'deploying' : 'tearing_down';
      d.current = { id: a.id, kind: this.kind, state: 'queued', reason: null, gate: null };
      if (m.frozen) {
        d.current.gate = 'slot';
        m.frozenQueue.push(d.name);
      } else take(m, d);
    }
    await checkInvariants(m, r);
  }
  toString = () => `${this.kind}(${this.name})`;
}

/** `d`'s attempt is past every other gate: it takes the free slot or queues for it. */
function take(m: Model, d: MDep): void {
  const a = d.current!;
  if (m.holder === null) {
    m.holder = d.name;
    a.state = 'running';
    a.gate = null;
  } else {
    m.queue.push(d.name);
    a.gate = 'slot';
    seen.queued += 1;
  }
}

/**
 * The slot's holder exits with rc; the first in the queue gets the slot, unless a freeze is in force:
 * then the queue's head is held by the freeze too (the gates are looked at again on the hand-over, the
 * freeze first) and the slot stays free until the lift.
 */
class GExit implements Cmd {
  constructor(readonly rc: number) {}
  check = (m: Model) => m.holder !== null;
  async run(m: Model, r: Real) {
    const d = m.deps.get(m.holder!)!;
    const a = d.current!;
    await tellExit(r, d.id, this.rc);
    a.state = this.rc === 0 ? 'succeeded' : 'failed';
    a.reason = this.rc === 0 ? null : 'exit_nonzero';
    d.state = afterEnd(a.kind, a.state);
    m.holder = null;
    const next = m.frozen ? undefined : m.queue.shift();
    if (next) {
      seen.handedOver += 1;
      take(m, m.deps.get(next)!);
    }
    await checkInvariants(m, r);
  }
  toString = () => `exit-holder(${this.rc})`;
}

class Freeze implements Cmd {
  check = (m: Model) => !m.frozen;
  async run(m: Model, r: Real) {
    const until = new Date(Date.now() + 3600_000).toISOString();
    await r.engine.createFreeze(
      { name: FREEZE, match: { plans: ['shared'] }, until, reason: 'model' },
      ADMIN,
    );
    m.frozen = true;
    await checkInvariants(m, r);
  }
  toString = () => 'freeze';
}

/**
 * The freeze is lifted: what it held while new queues for the slot behind those that waited for it
 * before, in the order it came; the head of the queue takes a free slot.
 */
class Lift implements Cmd {
  check = (m: Model) => m.frozen;
  async run(m: Model, r: Real) {
    await r.engine.deleteFreeze(FREEZE, ADMIN);
    m.frozen = false;
    if (m.frozenQueue.length > 0) seen.frozenThenLifted += 1;
    m.queue.push(...m.frozenQueue.splice(0));
    const next = m.holder === null ? m.queue.shift() : undefined;
    if (next) take(m, m.deps.get(next)!);
    await checkInvariants(m, r);
  }
  toString = () => 'lift';
}

/** A deploy or teardown of the approval plan's deployment: it waits for approval. */
class PStart implements Cmd {
  constructor(readonly kind: AttemptKind) {}
  check = (m: Model) =>
    !busy(m.deps.get(APPR)!.state) && !(this.kind === 'teardown' && m.deps.get(APPR)!.state === 'torn_down');
  async run(m: Model, r: Real) {
    const d = m.deps.get(APPR)!;
    const a =
      this.kind === 'deploy'
        ? await r.engine.startDeploy(APPR, {}, OPER)
        : await r.engine.teardown(APPR, { confirm: APPR }, OPER);
    d.before = d.state;
    d.state = this.kind === 'deploy' ? 'deploying' : 'tearing_down';
    d.current = { id: a.id, kind: this.kind, state: 'queued', reason: null, gate: 'approval' };
    await checkInvariants(m, r);
  }
  toString = () => `${this.kind}(${APPR})`;
}

const awaitingApproval = (m: Model) => m.deps.get(APPR)!.current?.gate === 'approval';

/** The approval: by its requester (refused, nothing written), by another token (it runs), or a reject. */
class Answer implements Cmd {
  constructor(readonly how: 'self' | 'other' | 'reject') {}
  check = awaitingApproval;
  async run(m: Model, r: Real) {
    const d = m.deps.get(APPR)!;
    const a = d.current!;
    if (this.how === 'self') {
      await refused(r, 'FORBIDDEN', () => r.engine.approveAttempt(a.id, { reason: 'mine' }, OPER));
      seen.selfRefused += 1;
    } else if (this.how === 'other') {
      await r.engine.approveAttempt(a.id, { reason: 'looks fine' }, OTHER);
      a.state = 'running';
      a.gate = null;
      seen.approved += 1;
    } else {
      await r.engine.rejectAttempt(a.id, { reason: 'not now' }, OTHER);
      a.state = 'cancelled';
      a.reason = 'rejected';
      a.gate = null;
      d.state = d.before; // it never started: the deployment goes back to the state it had
      seen.rejected += 1;
    }
    await checkInvariants(m, r);
  }
  toString = () => `answer(${this.how})`;
}

class PExit implements Cmd {
  constructor(readonly rc: number) {}
  check = (m: Model) => m.deps.get(APPR)!.current?.state === 'running';
  async run(m: Model, r: Real) {
    const d = m.deps.get(APPR)!;
    const a = d.current!;
    await tellExit(r, d.id, this.rc);
    a.state = this.rc === 0 ? 'succeeded' : 'failed';
    a.reason = this.rc === 0 ? null : 'exit_nonzero';
    d.state = afterEnd(a.kind, a.state);
    await checkInvariants(m, r);
  }
  toString = () => `exit(${APPR}, ${this.rc})`;
}

/** The stack's active run, from the store (null once it ended). */
async function activeRun(r: Real): Promise<string | null> {
  return (await r.engine.getStack(STACK)).active_run?.id ?? null;
}

async function stackUnits(r: Real): Promise<string[]> {
  return (await r.engine.getStack(STACK)).units.map((u) => u.deployment_id);
}

/** A unit attempt of the stack that is running now, if any. */
async function runningUnit(r: Real): Promise<{ dep: string; attempt: string } | null> {
  for (const dep of await stackUnits(r)) {
    const a = (await r.engine.listAttempts(dep, { limit: 1 })).items[0];
    if (a?.state === 'running') return { dep, attempt: a.id };
  }
  return null;
}

class SRun implements Cmd {
  constructor(readonly kind: 'deploy' | 'teardown') {}
  check = () => true;
  async run(m: Model, r: Real) {
    const input = this.kind === 'deploy' ? {} : { confirm: STACK };
    const call = () => r.engine.startStackRun(STACK, this.kind, input, OPER);
    m.activeRun = await activeRun(r);
    if (!m.activeRun) {
      await call();
      seen.runs += 1;
    } else {
      // The run seen active may end between that read and the call (its last unit ends meanwhile): then
      // a new run starts, rightly, but only once the one seen has ended. Otherwise: refused, nothing written.
      const seenRun = m.activeRun;
      const before = await requestWrites(r);
      const started = await call().then(
        () => true,
        (err: unknown) => {
          expect(err).toMatchObject({ code: 'STACK_RUN_IN_PROGRESS' });
          return false;
        },
      );
      if (started) {
        expect(['succeeded', 'failed', 'cancelled']).toContain((await r.engine.getRun(seenRun)).state);
        seen.runs += 1;
      } else
        expect(await requestWrites(r), 'nothing written by a refused STACK_RUN_IN_PROGRESS').toEqual(before);
    }
    await checkInvariants(m, r);
  }
  toString = () => `run(${this.kind})`;
}

/** A running unit of the stack exits with rc; the run goes on (or ends) by itself. */
class SUnitExit implements Cmd {
  constructor(readonly rc: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    // a unit the run launched on its last commit may still be starting
    await until(
      r,
      'a unit to run or no run',
      async () => (await runningUnit(r)) !== null || !(await activeRun(r)),
    );
    const u = await runningUnit(r);
    if (u) {
      seen.unitsLaunched += 1;
      await tellExit(r, u.dep, this.rc);
      await until(r, `unit attempt ${u.attempt} to end`, async () => {
        const s = (await r.engine.getAttempt(u.attempt)).state;
        return s !== 'running' && s !== 'queued';
      });
    }
    await checkInvariants(m, r);
  }
  toString = () => `unit-exit(${this.rc})`;
}

class SCancel implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    const call = () => r.engine.cancelStackRun(STACK, OPER);
    const run = await activeRun(r);
    if (!run) await refused(r, 'NO_ACTIVE_RUN', call);
    else {
      await call();
      seen.runsCancelled += 1;
      await until(r, `run ${run} to end after its cancel`, async () => (await activeRun(r)) === null);
      expect((await r.engine.getRun(run)).state, 'a cancelled run').toBe('cancelled');
    }
    await checkInvariants(m, r);
  }
  toString = () => 'cancel-run';
}

async function open(dir: string, dialect: TestDialect): Promise<Lifeline> {
  // No start(), so no heartbeat: a lease that lapsed mid-run (15 s, soon reached on a loaded machine)
  // would stop the watcher and hang settle(). The model has one instance and tests no lease.
  const config = await dialectConfig(dialect, dir, { plans: PLANS, auth: AUTH, lease_ttl: '1h' });
  const engine = await openLifeline({ config, logger: quietLogger() });
  await engine.reconcileNow();
  return engine;
}

function killAll(r: Real, attemptId: string): void {
  const dir = path.join(r.dir, 'attempts', attemptId);
  for (const id of [readSupervisor(dir), readProcess(dir)]) {
    try {
      if (id) process.kill(-id.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Invariant 11's "always ends": a run whose units all exit ends. */
async function drainRun(r: Real): Promise<void> {
  const run = await activeRun(r);
  if (!run) return;
  const told = new Set<string>(); // each unit attempt once: its FIFO has no reader once it read
  await until(r, `run ${run} to end`, async () => {
    const u = await runningUnit(r);
    if (u && !told.has(u.attempt)) {
      told.add(u.attempt);
      await tellExit(r, u.dep, 0);
    }
    return (await activeRun(r)) === null;
  });
  expect(['succeeded', 'failed'], `run ${run} ended`).toContain((await r.engine.getRun(run)).state);
}

async function runModel(dialect: TestDialect, cmds: Iterable<Cmd>): Promise<void> {
  const dir = tempDir('lifeline-model-gates-');
  const real: Real = { dir, dialect, engine: await open(dir, dialect) };
  const model: Model = {
    deps: new Map(),
    holder: null,
    queue: [],
    frozenQueue: [],
    frozen: false,
    stackId: '',
    activeRun: null,
  };
  try {
    for (const [name, plan] of [...GATED.map((g) => [g, 'shared']), [APPR, 'appr']]) {
      const d = await real.engine.createDeployment({ name, plan }, OPER);
      model.deps.set(name, { id: d.id, name, state: 'pending', current: null, before: 'pending' });
    }
    const stack = await real.engine.createStack(
      {
        name: STACK,
        units: [
          { key: 'a', plan: 'unit' },
          { key: 'b', plan: 'unit', after: ['a'] },
        ],
      },
      OPER,
    );
    model.stackId = stack.id;
    await fc.asyncModelRun(() => ({ model, real }), cmds);
    await drainRun(real);
    await checkInvariants(model, real);
  } finally {
    for (const dep of model.deps.values()) if (dep.current) killAll(real, dep.current.id);
    for (const dep of await stackUnits(real).catch(() => [])) {
      const a = (await real.engine.listAttempts(dep, { limit: 1 }).catch(() => null))?.items[0];
      if (a) killAll(real, a.id);
    }
    await real.engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const gated = fc.constantFrom(...GATED);
const kind = fc.constantFrom<AttemptKind>('deploy', 'deploy', 'teardown');
const rc = fc.constantFrom(0, 0, 1);
const commands = [
  fc.tuple(gated, kind).map(([n, k]) => new GStart(n, k)),
  fc.tuple(gated, kind).map(([n, k]) => new GStart(n, k)),
  fc.tuple(gated, kind).map(([n, k]) => new GStart(n, k)),
  rc.map((c) => new GExit(c)),
  rc.map((c) => new GExit(c)),
  fc.constant(new Freeze()),
  fc.constant(new Lift()),
  kind.map((k) => new PStart(k)),
  fc.constantFrom<'self' | 'other' | 'reject'>('self', 'other', 'other', 'reject').map((h) => new Answer(h)),
  rc.map((c) => new PExit(c)),
  fc.constantFrom<'deploy' | 'teardown'>('deploy', 'deploy', 'teardown').map((k) => new SRun(k)),
  rc.map((c) => new SUnitExit(c)),
  rc.map((c) => new SUnitExit(c)),
  fc.constant(new SCancel()),
];

/**
 * A fixed walk through every path, so each is taken on every run whatever the random sequences reach:
 * three deployments queue on the one slot and are handed it in order; a freeze holds two new attempts
 * while the holder ends, and its lift queues them in the order they came; an approval refused to its
 * requester, then given by another; a reject; a stack deployed unit by unit, torn down, and a run
 * cancelled.
 */
const TOUR: Cmd[] = [
  new GStart('g1', 'deploy'),
  new GStart('g2', 'deploy'),
  new GStart('g3', 'deploy'),
  new GExit(0),
  new Freeze(),
  new GStart('g1', 'teardown'),
  new GExit(1),
  new GExit(0),
  new Lift(),
  new GExit(0),
  new PStart('deploy'),
  new Answer('self'),
  new Answer('other'),
  new PExit(0),
  new PStart('teardown'),
  new Answer('reject'),
  new SRun('deploy'),
  new SRun('teardown'),
  new SUnitExit(0),
  new SUnitExit(0),
  new SRun('teardown'),
  new SUnitExit(0),
  new SRun('deploy'),
  new SCancel(),
  new SCancel(),
];

describe.each(DIALECTS)('gates and stacks model (%s)', (dialect) => {
  it('walks every gate and run path', async () => {
    seen = nothingSeen();
    await runModel(dialect, TOUR);
    for (const [k, n] of Object.entries(seen)) expect(n, `the walk reached ${k}`).toBeGreaterThan(0);
  }, 120_000);

  it(
    `holds invariants 10, 11 and 12 over ${runsOn(dialect)} random command sequences`,
    async () => {
      seen = nothingSeen();
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 25, size: 'max' }), (cmds) =>
          runModel(dialect, cmds),
        ),
        { numRuns: runsOn(dialect) },
      );
      console.log(`gates and stacks model (${dialect}): ${JSON.stringify(seen)}`);
    },
    30 * 60_000,
  );
});
