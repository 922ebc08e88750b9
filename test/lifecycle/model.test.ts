// Model-based test (SPEC §8 invariants 1, 2, 6, 7 and §9.3): random sequences of create / deploy /
// teardown / cancel / resolve / process exit / verifying-check verdict / process loss / late result /
// delete / crash-and-recover, run against the real store (SQLite and Postgres) and real supervised
// processes, compared after every step with a model. Plans with a `check` take part (SPEC §9.3): an exit
// 0 of a verified kind runs the check, which the test holds (crashes land while it runs) or lets decide
// up / absent / failed. Each attempt's state, reason, rc, check_result and `check` log lines, and each
// deployment's count of check runs, are predicted and compared.
// A fixed walk takes every verified path once per store. LIFELINE_MODEL_RUNS sets the number of random
// runs on SQLite (default 30; 120 under LIFELINE_TEST_FULL=1; Postgres runs a quarter of it).
import fs from 'node:fs';
import path from 'node:path';
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
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { readExit, readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import {
  dialectConfig,
  DIALECTS,
  FIXTURES,
  quietLogger,
  tempDir,
  type TestDialect,
} from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';
import {
  expectAttemptHistories,
  expectCheckHistories,
  expectRetryHistories,
  expectStoreInvariants,
  snapshotOf,
} from '../helpers/invariants.ts';

const RUNS = Number(process.env.LIFELINE_MODEL_RUNS ?? scaled(30, 120));
// Postgres pays a fresh database and network round trips per run: fewer runs keep the file's time
// reasonable; the commands and checks are the same.
const runsOn = (dialect: TestDialect) => (dialect === 'sqlite' ? RUNS : Math.ceil(RUNS / 4));
const NAMES = ['a', 'b'] as const;
const ADMIN: Actor = { name: 'admin', role: 'admin' };
const OPER: Actor = { name: 'oper', role: 'operator' };

// ---- The plans and what they make of an attempt's end: the one place a plan option goes. ----
// Every plan runs ctl.sh (exits when the test says so); hold-check.sh is the verifying check (held or
// told its rc through the workspace). Automatic retry (SPEC §9.1) slots in here: a `retry` field in
// PlanSpec (written into planConfigs, with a short backoff), a branch beside `afterEnd` that schedules
// a retry in the model when a deploy ends failed/exit_nonzero (never unverified, cancelled, unknown;
// the deployment stays `failed` with `retry: {number, of}`), the operator commands (Start, Cancel,
// Resolve, Delete) clearing it, and one command that waits for the retry's attempt as Start does.
interface PlanSpec {
  check: boolean;
  verify: Record<AttemptKind, boolean>;
  /** SPEC §9.1: retries allowed since the last success or operator action; null: none. */
  retry: number | null;
}
const PLANS = {
  plain: { check: false, verify: { deploy: false, teardown: false }, retry: null },
  verified: { check: true, verify: { deploy: true, teardown: true }, retry: null },
  teardown_verified: { check: true, verify: { deploy: false, teardown: true }, retry: null },
  deploy_verified: { check: true, verify: { deploy: true, teardown: false }, retry: null },
  retrying: { check: false, verify: { deploy: false, teardown: false }, retry: 2 },
} satisfies Record<string, PlanSpec>;
/**
 * Far enough that no retry starts by itself during a run (full jitter over 20 days): only RetryDue,
 * which moves the schedule to now, starts one, so the model knows when.
 */
const RETRY_BACKOFF = '20d';
const RETRY_BACKOFF_MS = 20 * 24 * 3600 * 1000;
type PlanName = keyof typeof PLANS;
const PLAN_NAMES = Object.keys(PLANS) as PlanName[];

function planConfigs(): Record<string, unknown> {
  // ctl.sh, after publishing an output that names its attempt (SPEC §12.1).
  const ctl = [path.join(FIXTURES, 'ctl-out.sh')];
  const check = [path.join(FIXTURES, 'hold-check.sh')];
  return Object.fromEntries(
    Object.entries(PLANS).map(([name, spec]) => [
      name,
      {
        deploy: ctl,
        teardown: ctl,
        cancel_grace: '1s',
        ...(spec.check ? { check, verify: spec.verify } : {}),
        ...(spec.retry !== null ? { retry: { max: spec.retry, backoff: RETRY_BACKOFF } } : {}),
      },
    ]),
  );
}

/** How an attempt ended: what its row (and its last attempt_end) must say. rc 'any': not predicted. */
interface Ending {
  state: AttemptState;
  reason: AttemptReason | null;
  rc: number | null | 'any';
}

/** The plan's process exited with rc: the attempt ends, or (exit 0 of a verified kind) its check runs. */
function afterExit(plan: PlanName, kind: AttemptKind, rc: number): Ending | 'check' {
  const spec: PlanSpec = PLANS[plan];
  if (rc === 0 && spec.check && spec.verify[kind]) return 'check';
  return rc === 0
    ? { state: 'succeeded', reason: null, rc }
    : { state: 'failed', reason: 'exit_nonzero', rc };
}

/** The verifying check exited with checkRc (0 up, 3 absent, else failed): a deploy needs up, a teardown absent. */
function afterVerdict(kind: AttemptKind, checkRc: number): Ending {
  const verdict = checkRc === 0 ? 'up' : checkRc === 3 ? 'absent' : 'failed';
  const ok = verdict === (kind === 'deploy' ? 'up' : 'absent');
  return ok ? { state: 'succeeded', reason: null, rc: 0 } : { state: 'failed', reason: 'unverified', rc: 0 };
}

/** Where the deployment goes when its current attempt ends so (SPEC §2.1). */
function afterEnd(kind: AttemptKind, end: Ending): DeploymentState {
  if (end.state === 'unknown') return 'unknown';
  if (end.state !== 'succeeded') return 'failed';
  return kind === 'deploy' ? 'ready' : 'torn_down';
}

/** What the held check prints, once it is let go (only the last run's lines reach the log). */
const checkLines = (name: string, rc: number) => [`checking ${name}`, `verdict ${rc}`];

// ---- The model ----

interface MAttempt {
  id: string;
  kind: AttemptKind;
  state: AttemptState;
  reason: AttemptReason | null;
  rc: number | null | 'any';
  ends: number; // attempt_end events expected
  /** Exited 0, its verifying check is running (held): still `running`. */
  verifying: boolean;
  /** The check_result it must have and the `check` log lines before it (null: none). */
  check: { rc: number; lines: string[] } | null;
  /** Which automatic retry it is (SPEC §9.1); null when an operator started it. */
  retryNumber: number | null;
}
interface MDeployment {
  id: string;
  name: string;
  plan: PlanName;
  state: DeploymentState;
  current: MAttempt | null;
  /** How often the plan's check has started for it (hold-check.sh counts in the workspace). */
  checkRuns: number;
  /** The retry waiting (SPEC §9.1): retry `number` of `of`, rerunning the failed attempt; null: none. */
  retry: { number: number; of: number; failedId: string } | null;
  /** Its retry_scheduled, retry_cancelled and retry_exhausted events so far. */
  retryEvents: { scheduled: number; cancelled: number; exhausted: number };
  /** SPEC §12.1: the deploy attempt whose outputs are the deployment's; null: none (`{}`). */
  outputsOf: string | null;
}
interface Model {
  deps: Map<string, MDeployment>;
  attempts: Map<string, MAttempt>;
}
interface Real {
  engine: Lifeline;
  dir: string;
  dialect: TestDialect;
}

/** What the runs exercised, so the test fails when the generator stops reaching the §9.3 paths. */
const nothingSeen = () => ({
  decided: 0,
  unverified: 0,
  held: 0,
  rerunAfterCrash: 0,
  dueAfterCrash: 0,
  cancelledInCheck: 0,
  retryScheduled: 0,
  retryStarted: 0,
  retryCancelled: 0,
  retryExhausted: 0,
  retryKeptOverCrash: 0,
});
let seen = nothingSeen();

const busy = (s: DeploymentState) => s === 'deploying' || s === 'tearing_down';
const active = (s: AttemptState) => s === 'queued' || s === 'running';

/** The attempt ends as `end`; the deployment follows (the attempt is its current one). */
function finish(d: MDeployment, a: MAttempt, end: Ending): void {
  if (end.reason === 'unverified') seen.unverified += 1;
  a.state = end.state;
  a.reason = end.reason;
  a.rc = end.rc;
  a.ends = 1;
  a.verifying = false;
  d.state = afterEnd(a.kind, end);
  afterOutputs(d, a);
  afterFailure(d, a, end);
}

/** SPEC §12.1: the current attempt ended; a succeeded deploy's outputs become the deployment's, a teardown's clear them. */
function afterOutputs(d: MDeployment, a: MAttempt): void {
  if (a.state === 'succeeded') d.outputsOf = a.kind === 'deploy' ? a.id : null;
}

/**
 * SPEC §9.1: a deploy of a retrying plan that ends failed/exit_nonzero (never unverified, cancelled,
 * unknown, late_result) schedules the next retry of its chain, or, past the plan's max, is exhausted.
 */
function afterFailure(d: MDeployment, a: MAttempt, end: Ending): void {
  const max = PLANS[d.plan].retry;
  if (max === null || a.kind !== 'deploy' || end.state !== 'failed' || end.reason !== 'exit_nonzero') return;
  const n = (a.retryNumber ?? 0) + 1;
  if (n <= max) {
    d.retry = { number: n, of: max, failedId: a.id };
    d.retryEvents.scheduled += 1;
    seen.retryScheduled += 1;
  } else {
    d.retryEvents.exhausted += 1;
    seen.retryExhausted += 1;
  }
}

async function open(dir: string, dialect: TestDialect): Promise<Lifeline> {
  // No start(), so no heartbeat: a lease that lapsed mid-run (15 s, soon reached on a loaded machine)
  // would stop the watcher and hang settle(). The model has one instance and tests no lease.
  const config = await dialectConfig(dialect, dir, { plans: planConfigs(), lease_ttl: '1h' });
  const engine = await openLifeline({ config, logger: quietLogger() });
  await engine.reconcileNow();
  return engine;
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

const db = (r: Real) => r.engine.store.db;

async function attemptState(r: Real, id: string): Promise<AttemptState> {
  const row = await db(r)
    .selectFrom('attempts')
    .select('state')
    .where('id', '=', id)
    .executeTakeFirstOrThrow();
  return row.state as AttemptState;
}

const ended = (r: Real, a: MAttempt) =>
  until(r, `attempt ${a.id} to end`, async () => !active(await attemptState(r, a.id)));

async function footprint(r: Real): Promise<string> {
  const count = async (t: 'deployments' | 'attempts' | 'events' | 'idempotency_keys') =>
    Number(
      (
        await db(r)
          .selectFrom(t)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const seq = await db(r).selectFrom('counters').select('value').executeTakeFirstOrThrow();
  const versions = await db(r)
    .selectFrom('deployments')
    .select(['id', 'version', 'state'])
    .orderBy('id')
    .execute();
  const cancels = await db(r)
    .selectFrom('attempts')
    .select(['id', 'cancel_requested_at', 'state'])
    .orderBy('id')
    .execute();
  return JSON.stringify([
    await count('deployments'),
    await count('attempts'),
    await count('events'),
    Number(seq.value),
    versions,
    cancels,
  ]);
}

/** Runs a call the model says must be refused with `code`; checks nothing was written (invariant 6). */
async function refused(r: Real, code: string, call: () => Promise<unknown>): Promise<void> {
  const before = await footprint(r);
  await expect(call()).rejects.toMatchObject({ code });
  expect(await footprint(r)).toBe(before);
}

function runDir(r: Real, attemptId: string): string {
  return path.join(r.dir, 'attempts', attemptId);
}

function workspace(r: Real, depId: string): string {
  const ws = path.join(r.dir, 'workspaces', depId);
  fs.mkdirSync(ws, { recursive: true });
  return ws;
}

/** Sets up the deployment's next check: held until let go, or deciding at once with rc. */
function setCheck(r: Real, depId: string, how: { hold: true } | { hold: false; rc: number }): void {
  const ws = workspace(r, depId);
  if (how.hold) fs.writeFileSync(path.join(ws, 'check_hold'), '');
  else {
    fs.writeFileSync(path.join(ws, 'check_rc'), String(how.rc));
    fs.rmSync(path.join(ws, 'check_hold'), { force: true });
  }
}

function checkRuns(r: Real, depId: string): number {
  try {
    return (
      fs.readFileSync(path.join(r.dir, 'workspaces', depId, 'check_runs'), 'utf8').split('\n').length - 1
    );
  } catch {
    return 0;
  }
}

/** The model says the deployment's check has started once more: wait until it has. */
async function checkStarted(r: Real, d: MDeployment): Promise<void> {
  d.checkRuns += 1;
  await until(r, `check run ${d.checkRuns} of ${d.name}`, async () => checkRuns(r, d.id) >= d.checkRuns);
}

/** Tells a ctl.sh plan to exit with rc (through its control FIFO). */
async function tellExit(r: Real, depId: string, rc: number): Promise<void> {
  await tellCtl(r.dir, depId, rc);
}

function killAll(r: Real, attemptId: string): void {
  const dir = runDir(r, attemptId);
  for (const id of [readSupervisor(dir), readProcess(dir)]) {
    try {
      if (id) process.kill(-id.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function checkInvariants(m: Model, r: Real): Promise<void> {
  const snap = await snapshotOf(db(r));
  const { deployments: deps, attempts, events } = snap;
  // §8.1, §8.2, §8.3; each attempt's transition chain and its start/end events; §9.3's check trail
  expectStoreInvariants(snap);
  expectAttemptHistories(snap);
  expectCheckHistories(snap);
  expectRetryHistories(snap);
  // the model agrees with the store
  for (const [name, md] of m.deps) {
    const d = deps.find((x) => x.name === name && x.deleted_at === null);
    expect(d?.state, `state of ${name}`).toBe(md.state);
    expect(checkRuns(r, md.id), `check runs of ${name}`).toBe(md.checkRuns);
    // §12.1: the outputs of the last succeeded deploy (the store's fold is checked above), as the API shows them
    expect((await r.engine.getDeployment(name)).outputs, `outputs of ${name}`).toEqual(
      md.outputsOf ? { attempt: md.outputsOf, kind: 'deploy' } : {},
    );
    // §9.1: the waiting retry as the API shows it, and the deployment's retry events
    const shown = (await r.engine.getDeployment(name)).retry;
    expect(shown && { number: shown.number, of: shown.of }, `retry of ${name}`).toEqual(
      md.retry && { number: md.retry.number, of: md.retry.of },
    );
    expect(d?.retry_attempt_id ?? null, `attempt the retry of ${name} reruns`).toBe(
      md.retry?.failedId ?? null,
    );
    if (shown && md.retry) {
      // due after its failure, within the backoff's cap (full jitter): far off, so only RetryDue starts it
      const failed = attempts.find((x) => x.id === md.retry!.failedId)!;
      const wait = Date.parse(shown.at) - Date.parse(failed.ended_at!);
      expect(wait, `retry of ${name} due after its failure`).toBeGreaterThanOrEqual(0);
      expect(wait, `retry of ${name} due within its backoff`).toBeLessThanOrEqual(
        RETRY_BACKOFF_MS * 2 ** (md.retry.number - 1),
      );
    }
    const count = (type: string) => events.filter((e) => e.deployment_id === md.id && e.type === type).length;
    expect(
      {
        scheduled: count('retry_scheduled'),
        cancelled: count('retry_cancelled'),
        exhausted: count('retry_exhausted'),
      },
      `retry events of ${name}`,
    ).toEqual(md.retryEvents);
  }
  // §8.7: attempt states as the model says (final ones never overwritten); one attempt_end per end;
  // §9.3: the check's verdict and its output in the log, as the model says
  for (const ma of m.attempts.values()) {
    const a = attempts.find((x) => x.id === ma.id)!;
    const mine = events.filter((e) => e.attempt_id === ma.id);
    expect(a.state, `attempt ${ma.id}`).toBe(ma.state);
    expect(a.reason, `reason of attempt ${ma.id}`).toBe(ma.reason);
    expect(a.retry_number ?? null, `retry number of attempt ${ma.id}`).toBe(ma.retryNumber);
    if (ma.rc !== 'any') expect(a.rc === null ? null : Number(a.rc), `rc of attempt ${ma.id}`).toBe(ma.rc);
    const ends = mine.filter((e) => e.type === 'attempt_end').length;
    expect(ends, `attempt_end count of ${ma.id}`).toBe(ma.ends);
    const results = mine.filter((e) => e.type === 'check_result').map((e) => JSON.parse(e.data).rc);
    expect(results, `check_result of ${ma.id}`).toEqual(ma.check ? [ma.check.rc] : []);
    const lines = mine
      .filter((e) => e.type === 'log_line')
      .map((e) => JSON.parse(e.data))
      .filter((l) => l.stream === 'check')
      .map((l) => l.text);
    expect(lines, `check log lines of ${ma.id}`).toEqual(ma.check?.lines ?? []);
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

class Create implements Cmd {
  constructor(
    readonly name: string,
    readonly plan: PlanName,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    if (m.deps.has(this.name)) {
      await refused(r, 'DEPLOYMENT_EXISTS', () =>
        r.engine.createDeployment({ name: this.name, plan: this.plan }, OPER),
      );
    } else {
      const d = await r.engine.createDeployment({ name: this.name, plan: this.plan }, OPER);
      m.deps.set(this.name, {
        id: d.id,
        name: this.name,
        plan: this.plan,
        state: 'pending',
        current: null,
        checkRuns: 0,
        retry: null,
        retryEvents: { scheduled: 0, cancelled: 0, exhausted: 0 },
        outputsOf: null,
      });
    }
    await checkInvariants(m, r);
  }
  toString = () => `create(${this.name}, ${this.plan})`;
}

class Start implements Cmd {
  constructor(
    readonly name: string,
    readonly kind: AttemptKind,
    readonly force: boolean,
    readonly admin: boolean,
    readonly confirmOk: boolean,
  ) {}
  check = (m: Model) => m.deps.size > 0;
  async run(m: Model, r: Real) {
    // An idle deployment if there is one (the named one first), so few starts go to waste.
    const d = target(m, this.name, (x) => !busy(x.state)) ?? target(m, this.name, () => true)!;
    const actor = this.admin ? ADMIN : OPER;
    const call =
      this.kind === 'deploy'
        ? () => r.engine.startDeploy(d.name, { force: this.force }, actor)
        : () =>
            r.engine.teardown(
              d.name,
              { confirm: this.confirmOk ? d.name : 'nope', force: this.force },
              actor,
            );
    let code: string | null = null;
    if (this.kind === 'teardown' && !this.confirmOk) code = 'TEARDOWN_CONFIRM_MISMATCH';
    else if (this.force && !this.admin) code = 'FORBIDDEN';
    else if (this.kind === 'teardown' && d.state === 'torn_down') code = 'ALREADY_TORN_DOWN';
    else if (busy(d.state)) code = 'ATTEMPT_IN_PROGRESS';
    else if (d.state === 'unknown' && !this.force) code = 'DEPLOYMENT_UNKNOWN_STATE';
    if (code) {
      await refused(r, code, call);
    } else {
      const a = await call();
      // An operator's deploy or teardown clears a waiting retry and starts the count again (§9.1).
      await begin(m, r, d, a.id, this.kind, null);
    }
    await checkInvariants(m, r);
  }
  toString = () =>
    `${this.kind}(${this.name}, force=${this.force}, admin=${this.admin}, confirm=${this.confirmOk})`;
}

/** An attempt of `d` has been accepted: the model follows, the test waits until it runs. */
async function begin(
  m: Model,
  r: Real,
  d: MDeployment,
  id: string,
  kind: AttemptKind,
  retryNumber: number | null,
): Promise<void> {
  const ma: MAttempt = {
    id,
    kind,
    state: 'running',
    reason: null,
    rc: null,
    ends: 0,
    verifying: false,
    check: null,
    retryNumber,
  };
  m.attempts.set(id, ma);
  d.current = ma;
  d.state = kind === 'deploy' ? 'deploying' : 'tearing_down';
  d.retry = null;
  // Running, and ctl.sh's one line ("waiting for control") is in: nothing more is written until
  // the test acts, so a refusal's before/after footprint cannot catch a late log line.
  await until(r, 'attempt running with its first line', async () => {
    if ((await attemptState(r, id)) !== 'running') return false;
    const line = await db(r)
      .selectFrom('events')
      .select('seq')
      .where('attempt_id', '=', id)
      .where('type', '=', 'log_line')
      .executeTakeFirst();
    return line !== undefined;
  });
}

/**
 * The waiting retry falls due (its `retry_at` moved to now, as if the backoff had passed): exactly one
 * ordinary deploy attempt starts with actor `retry` and transition reason `retry n/max` (SPEC §9.1).
 */
class RetryDue implements Cmd {
  constructor(readonly name: string) {}
  check = (m: Model) => target(m, this.name, (x) => x.retry !== null) !== undefined;
  async run(m: Model, r: Real) {
    const d = target(m, this.name, (x) => x.retry !== null)!;
    const retry = d.retry!;
    await db(r)
      .updateTable('deployments')
      .set({ retry_at: new Date().toISOString() })
      .where('id', '=', d.id)
      .execute();
    await r.engine.startDueRetries();
    let id = '';
    await until(r, `retry ${retry.number} of ${d.name} to start`, async () => {
      const row = await db(r)
        .selectFrom('attempts')
        .select('id')
        .where('deployment_id', '=', d.id)
        .where('retry_number', '=', retry.number)
        .orderBy('number', 'desc')
        .executeTakeFirst();
      id = row?.id ?? '';
      return row !== undefined;
    });
    const a = await r.engine.getAttempt(id);
    expect(a.requested_by, 'actor of the retry').toBe('retry');
    const starts = (await r.engine.listTransitions(d.name)).items.filter((t) => t.to === 'deploying');
    expect(starts[starts.length - 1], 'transition that started the retry').toMatchObject({
      actor: 'retry',
      reason: `retry ${retry.number}/${retry.of}`,
    });
    seen.retryStarted += 1;
    await begin(m, r, d, id, 'deploy', retry.number);
    await checkInvariants(m, r);
  }
  toString = () => `retryDue(${this.name})`;
}

/**
 * The deployment called `name` when it qualifies, else the first one that does: commands that only
 * apply in some states then seldom go to waste.
 */
function target(m: Model, name: string, ok: (d: MDeployment) => boolean): MDeployment | undefined {
  const named = m.deps.get(name);
  if (named && ok(named)) return named;
  return [...m.deps.values()].find(ok);
}

/** Its current attempt's plan process runs (it has not exited yet). */
const running = (d: MDeployment) => d.current?.state === 'running' && !d.current.verifying;
const verifying = (d: MDeployment) => d.current?.verifying === true;

/**
 * The current attempt's process exits with rc. When that starts the verifying check, the check is
 * either held (the attempt stays `running`, a later Verdict or Cancel ends it, a Crash re-runs it) or
 * decides at once with checkRc.
 */
class Exit implements Cmd {
  constructor(
    readonly name: string,
    readonly rc: number,
    readonly hold: boolean,
    readonly checkRc: number,
  ) {}
  check = (m: Model) => target(m, this.name, running) !== undefined;
  async run(m: Model, r: Real) {
    const d = target(m, this.name, running)!;
    const a = d.current!;
    const next = afterExit(d.plan, a.kind, this.rc);
    if (next === 'check') setCheck(r, d.id, this.hold ? { hold: true } : { hold: false, rc: this.checkRc });
    await tellExit(r, d.id, this.rc);
    if (next !== 'check') {
      await ended(r, a);
      finish(d, a, next);
    } else {
      await checkStarted(r, d);
      if (this.hold) {
        a.verifying = true;
        seen.held += 1;
      } else {
        seen.decided += 1;
        await ended(r, a);
        finish(d, a, afterVerdict(a.kind, this.checkRc));
        a.check = { rc: this.checkRc, lines: checkLines(d.name, this.checkRc) };
      }
    }
    await checkInvariants(m, r);
  }
  toString = () =>
    `exit(${this.name}, ${this.rc}${this.rc === 0 ? `, hold=${this.hold}, check=${this.checkRc}` : ''})`;
}

/** The held verifying check of the current attempt is let go and exits with checkRc. */
class Verdict implements Cmd {
  constructor(
    readonly name: string,
    readonly checkRc: number,
  ) {}
  check = (m: Model) => target(m, this.name, verifying) !== undefined;
  async run(m: Model, r: Real) {
    const d = target(m, this.name, verifying)!;
    const a = d.current!;
    setCheck(r, d.id, { hold: false, rc: this.checkRc });
    seen.decided += 1;
    await ended(r, a);
    finish(d, a, afterVerdict(a.kind, this.checkRc));
    a.check = { rc: this.checkRc, lines: checkLines(d.name, this.checkRc) };
    await checkInvariants(m, r);
  }
  toString = () => `verdict(${this.name}, ${this.checkRc})`;
}

class Cancel implements Cmd {
  constructor(readonly name: string) {}
  check = (m: Model) => m.deps.size > 0;
  async run(m: Model, r: Real) {
    const inflight = (x: MDeployment) => x.current !== null && active(x.current.state);
    const d =
      target(m, this.name, inflight) ??
      target(m, this.name, (x) => x.retry !== null) ??
      target(m, this.name, () => true)!;
    const a = d.current;
    if (d.retry) {
      // Only a retry waits: accepted, answered with the failed attempt, which stays failed (§9.1).
      const answer = await r.engine.cancel(d.name, OPER);
      expect([answer.id, answer.state], 'cancel of a waiting retry').toEqual([d.retry.failedId, 'failed']);
      d.retry = null;
      d.retryEvents.cancelled += 1;
      seen.retryCancelled += 1;
    } else if (!a || !active(a.state)) {
      await refused(r, 'NO_INFLIGHT_ATTEMPT', () => r.engine.cancel(d.name, OPER));
    } else {
      await r.engine.cancel(d.name, OPER);
      if (a.verifying) seen.cancelledInCheck += 1;
      await ended(r, a);
      // Cancellation wins over the exit code (SPEC §2.2), also over an exit 0 whose check still ran:
      // its rc is kept, the check is dropped unreported.
      finish(d, a, { state: 'cancelled', reason: 'cancelled', rc: a.verifying ? 0 : 'any' });
    }
    await checkInvariants(m, r);
  }
  toString = () => `cancel(${this.name})`;
}

/** The process dies together with its supervisor: no exit record, the outcome is lost. */
class Kill implements Cmd {
  constructor(readonly name: string) {}
  check = (m: Model) => target(m, this.name, running) !== undefined;
  async run(m: Model, r: Real) {
    const d = target(m, this.name, running)!;
    const a = d.current!;
    killAll(r, a.id);
    await ended(r, a);
    finish(d, a, { state: 'unknown', reason: 'exit_unobserved', rc: null });
    await checkInvariants(m, r);
  }
  toString = () => `kill(${this.name})`;
}

/**
 * Durable evidence of a lost attempt's outcome turns up (its exit record). A late exit 0 settles the
 * attempt `succeeded` without running the plan's check, even on a verified plan: that is what the
 * code does today (SPEC §5 "late result", §9.3 does not say); the model states it so a change shows.
 */
class LateResult implements Cmd {
  constructor(
    readonly name: string,
    readonly rc: number,
  ) {}
  check = (m: Model) => [...m.attempts.values()].some((a) => a.state === 'unknown');
  async run(m: Model, r: Real) {
    const a = [...m.attempts.values()].find((x) => x.state === 'unknown')!;
    const dir = runDir(r, a.id);
    fs.writeFileSync(path.join(dir, '.exit.tmp'), `${this.rc} - ${Date.now()}\n`);
    fs.renameSync(path.join(dir, '.exit.tmp'), path.join(dir, 'exit'));
    await r.engine.reconcileNow();
    const owner = [...m.deps.values()].find((d) => d.current === a);
    a.state = this.rc === 0 ? 'succeeded' : 'failed';
    a.reason = 'late_result';
    a.rc = this.rc;
    a.ends = 2;
    if (owner && owner.state === 'unknown') {
      owner.state = afterEnd(a.kind, a as Ending);
      afterOutputs(owner, a);
    }
    await checkInvariants(m, r);
  }
  toString = () => `late(${this.rc})`;
}

class Resolve implements Cmd {
  constructor(
    readonly name: string,
    readonly to: 'ready' | 'failed' | 'torn_down',
    readonly admin: boolean,
  ) {}
  check = (m: Model) => m.deps.has(this.name);
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const call = () =>
      r.engine.resolve(this.name, { state: this.to, reason: 'checked by hand' }, this.admin ? ADMIN : OPER);
    if (!this.admin) await refused(r, 'FORBIDDEN', call);
    else if (d.state !== 'unknown') await refused(r, 'INVALID_TRANSITION', call);
    else {
      await call();
      d.state = this.to;
      if (this.to === 'torn_down') d.outputsOf = null;
    }
    await checkInvariants(m, r);
  }
  toString = () => `resolve(${this.name}, ${this.to}, admin=${this.admin})`;
}

class Delete implements Cmd {
  constructor(
    readonly name: string,
    readonly force: boolean,
  ) {}
  check = (m: Model) => m.deps.has(this.name);
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const call = () => r.engine.deleteDeployment(this.name, { force: this.force }, ADMIN);
    if (busy(d.state)) await refused(r, 'INVALID_TRANSITION', call);
    else if (!this.force && d.state !== 'pending' && d.state !== 'torn_down')
      await refused(r, 'INVALID_TRANSITION', call);
    else {
      await call();
      m.deps.delete(this.name);
    }
    await checkInvariants(m, r);
  }
  toString = () => `delete(${this.name}, force=${this.force})`;
}

/**
 * The server dies (attempts keep running; a verifying check dies with it); meanwhile running processes
 * exit, die, or go on. On restart every check that was running, or is due for an exit 0 that came
 * while the server was down, runs (again) and decides (SPEC §9.3): held on, or let go with `release`.
 */
class Crash implements Cmd {
  constructor(
    readonly meanwhile: 'none' | 'exit0' | 'exit1' | 'kill',
    readonly release: number | null,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.engine.close();
    const deps = [...m.deps.values()];
    // A waiting retry survives the restart: the model keeps it and the check after recovery compares.
    if (deps.some((d) => d.retry !== null)) seen.retryKeptOverCrash += 1;
    const inCheck = deps.filter(verifying);
    const runningOnes = deps.filter(running);
    const checksDue = [...inCheck];
    for (const d of runningOnes) {
      const a = d.current!;
      if (this.meanwhile === 'kill') killAll(r, a.id);
      if (this.meanwhile === 'exit0' || this.meanwhile === 'exit1') {
        const rc = this.meanwhile === 'exit0' ? 0 : 1;
        if (afterExit(d.plan, a.kind, rc) === 'check') checksDue.push(d);
        await tellExit(r, d.id, rc);
        const dir = runDir(r, a.id);
        const deadline = Date.now() + 10_000;
        while (!readExit(dir)) {
          if (Date.now() > deadline) throw new Error('no exit record');
          await new Promise((res) => setTimeout(res, 5));
        }
      }
    }
    for (const d of checksDue)
      setCheck(r, d.id, this.release === null ? { hold: true } : { hold: false, rc: this.release });
    r.engine = await open(r.dir, r.dialect);
    for (const d of runningOnes) {
      const a = d.current!;
      if (this.meanwhile === 'none' || checksDue.includes(d)) continue;
      await ended(r, a);
      if (this.meanwhile === 'kill') finish(d, a, { state: 'unknown', reason: 'exit_unobserved', rc: null });
      else finish(d, a, afterExit(d.plan, a.kind, this.meanwhile === 'exit0' ? 0 : 1) as Ending);
    }
    for (const d of checksDue) {
      const a = d.current!;
      if (a.verifying) seen.rerunAfterCrash += 1;
      else seen.dueAfterCrash += 1;
      await checkStarted(r, d);
      if (this.release === null) a.verifying = true;
      else {
        seen.decided += 1;
        await ended(r, a);
        finish(d, a, afterVerdict(a.kind, this.release));
        a.check = { rc: this.release, lines: checkLines(d.name, this.release) };
      }
    }
    // After recovery no attempt is running without a live, verified process (§8.4)
    await checkInvariants(m, r);
  }
  toString = () => `crash(${this.meanwhile}, release=${this.release})`;
}

const name = fc.constantFrom(...NAMES);
/** The plans `a` and `b` start with: mostly verified or retrying ones, where the paths under test are. */
const firstPlan = fc.constantFrom<PlanName>(
  'verified',
  'verified',
  'teardown_verified',
  'deploy_verified',
  'plain',
  'retrying',
  'retrying',
);
const checkRc = fc.constantFrom(0, 3, 1);
const start = fc
  .tuple(
    name,
    fc.constantFrom('deploy' as const, 'teardown' as const),
    fc.constantFrom(false, false, true), // force
    fc.boolean(), // admin
    fc.constantFrom(true, true, true, false), // confirm
  )
  .map(([n, k, f, a, c]) => new Start(n, k, f, a, c));
const exit = fc
  .tuple(name, fc.constantFrom(0, 0, 0, 1, 2), fc.constantFrom(true, true, false), checkRc)
  .map(([n, rc, h, c]) => new Exit(n, rc, h, c));
const verdict = fc.tuple(name, checkRc).map(([n, c]) => new Verdict(n, c));
const crash = fc
  .tuple(
    fc.constantFrom('none' as const, 'exit0' as const, 'exit1' as const, 'kill' as const),
    fc.constantFrom(null, 0, 3, 1),
  )
  .map(([w, rel]) => new Crash(w, rel));
// Commands are drawn uniformly from this list and most only apply in some states: those that move
// attempts along come more than once, so the sequences reach verifying checks often.
const commands = [
  fc.tuple(name, fc.constantFrom(...PLAN_NAMES)).map(([n, p]) => new Create(n, p)),
  start,
  start,
  start,
  exit,
  exit,
  exit,
  verdict,
  name.map((n) => new Cancel(n)),
  name.map((n) => new Kill(n)),
  fc.tuple(name, fc.constantFrom(0, 1)).map(([n, rc]) => new LateResult(n, rc)),
  fc
    .tuple(name, fc.constantFrom('ready' as const, 'failed' as const, 'torn_down' as const), fc.boolean())
    .map(([n, s, a]) => new Resolve(n, s, a)),
  fc.tuple(name, fc.boolean()).map(([n, f]) => new Delete(n, f)),
  crash,
  crash,
  crash,
  name.map((n) => new RetryDue(n)),
  name.map((n) => new RetryDue(n)),
];

/** One run: a fresh store with `a` and `b` on these plans, then the commands. */
async function runModel(dialect: TestDialect, planA: PlanName, planB: PlanName, cmds: Iterable<Cmd>) {
  const dir = tempDir('lifeline-model-');
  const real: Real = { dir, dialect, engine: await open(dir, dialect) };
  const model: Model = { deps: new Map(), attempts: new Map() };
  try {
    // Both names exist from the start (Create still re-creates them after a delete), so most
    // sequences get as far as attempts and their checks.
    await new Create('a', planA).run(model, real);
    await new Create('b', planB).run(model, real);
    await fc.asyncModelRun(() => ({ model, real }), cmds);
  } finally {
    // leave nothing running behind (a held check ends once its workspace is gone)
    for (const a of model.attempts.values()) if (active(a.state)) killAll(real, a.id);
    await real.engine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A fixed walk through every verified path, so each is taken on every run of the suite whatever the
 * random sequences reach: a check held across a crash and then failing a deploy, a deploy whose kind is
 * not verified, an exit 0 that came while the engine was down (its check starts only after restart), a
 * cancel during the check, and a teardown the check still finds up.
 */
const TOUR: Cmd[] = [
  new Start('a', 'deploy', false, false, true),
  new Exit('a', 0, true, 0),
  new Crash('none', null),
  new Verdict('a', 1),
  new Start('b', 'deploy', false, false, true),
  new Exit('b', 0, true, 0),
  new Start('b', 'teardown', false, false, true),
  new Crash('exit0', 3),
  new Start('a', 'deploy', false, false, true),
  new Exit('a', 0, true, 0),
  new Cancel('a'),
  new Start('a', 'teardown', false, false, true),
  new Exit('a', 0, false, 0),
];

/**
 * A fixed walk through automatic retry (SPEC §9.1) on `r` (plan `retrying`, max 2): a failure schedules
 * retry 1, which survives a crash and starts when due; its failure (an exit while the engine is down)
 * schedules retry 2, which a cancel drops; an operator deploy starts the count again, whose retry 1 and
 * 2 run and fail until the retries are exhausted; a kill (unknown) schedules nothing, nor does a failed
 * teardown.
 */
const RETRY_TOUR: Cmd[] = [
  new Create('r', 'retrying'),
  new Start('r', 'deploy', false, false, true),
  new Exit('r', 1, false, 0),
  new Crash('none', null),
  new RetryDue('r'),
  new Crash('exit1', null),
  new Cancel('r'),
  new Start('r', 'deploy', false, false, true),
  new Exit('r', 2, false, 0),
  new RetryDue('r'),
  new Exit('r', 1, false, 0),
  new RetryDue('r'),
  new Exit('r', 1, false, 0),
  new Start('r', 'deploy', false, false, true),
  new Kill('r'),
  new Resolve('r', 'failed', true),
  new Start('r', 'teardown', false, false, true),
  new Exit('r', 1, false, 0),
];

describe.each(DIALECTS)('lifecycle model (%s)', (dialect) => {
  it('walks every verified-outcome path', async () => {
    seen = nothingSeen();
    await runModel(dialect, 'verified', 'teardown_verified', [...TOUR, ...RETRY_TOUR]);
    for (const [k, n] of Object.entries(seen)) expect(n, `the walk reached ${k}`).toBeGreaterThan(0);
  }, 120_000);

  it(
    `holds the invariants over ${runsOn(dialect)} random command sequences`,
    async () => {
      seen = nothingSeen();
      await fc.assert(
        fc.asyncProperty(
          firstPlan,
          firstPlan,
          fc.commands(commands, { maxCommands: 30, size: 'max' }),
          (a, b, cmds) => runModel(dialect, a, b, cmds),
        ),
        { numRuns: runsOn(dialect) },
      );
      // What the random sequences reached, for whoever tunes the generator (the walk covers each path).
      console.log(`lifecycle model (${dialect}): ${JSON.stringify(seen)}`);
    },
    30 * 60_000,
  );
});
