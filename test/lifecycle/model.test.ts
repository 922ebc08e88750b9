// Model-based test (SPEC §8 invariants 1, 2, 6, 7): random sequences of create / deploy / teardown /
// cancel / resolve / process exit / process loss / late result / delete / crash-and-recover, run against
// the real store (SQLite and Postgres) and real supervised processes, compared after every step with a model.
// LIFELINE_MODEL_RUNS raises the number of runs (default 200).
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Actor, AttemptState, DeploymentState } from '../../src/domain/types.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { readExit, readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { dialectConfig, DIALECTS, quietLogger, tempDir, type TestDialect } from '../helpers/engine.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';

const RUNS = Number(process.env.LIFELINE_MODEL_RUNS ?? 200);
// Postgres pays a fresh database and network round trips per run: fewer runs keep the file's time
// reasonable; the commands and checks are the same.
const runsOn = (dialect: TestDialect) => (dialect === 'sqlite' ? RUNS : Math.ceil(RUNS / 5));
const NAMES = ['a', 'b'] as const;
const ADMIN: Actor = { name: 'admin', role: 'admin' };
const OPER: Actor = { name: 'oper', role: 'operator' };

interface MAttempt {
  id: string;
  kind: 'deploy' | 'teardown';
  state: AttemptState;
  ends: number; // attempt_end events expected
}
interface MDeployment {
  id: string;
  state: DeploymentState;
  current: MAttempt | null;
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

const busy = (s: DeploymentState) => s === 'deploying' || s === 'tearing_down';
const active = (s: AttemptState) => s === 'queued' || s === 'running';

async function open(dir: string, dialect: TestDialect): Promise<Lifeline> {
  const engine = await openLifeline({ config: await dialectConfig(dialect, dir), logger: quietLogger() });
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

/** Tells a ctl.sh plan to exit with rc (through its control FIFO). */
async function tellExit(r: Real, depId: string, rc: number): Promise<void> {
  const fifo = path.join(r.dir, 'workspaces', depId, 'ctl');
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      fs.writeSync(fd, `${rc}\n`);
      fs.closeSync(fd);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENXIO' && code !== 'ENOENT') || Date.now() > deadline) throw err;
      await new Promise((res) => setTimeout(res, 5));
    }
  }
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

function endAs(kind: 'deploy' | 'teardown', ok: boolean): DeploymentState {
  if (!ok) return 'failed';
  return kind === 'deploy' ? 'ready' : 'torn_down';
}

async function checkInvariants(m: Model, r: Real): Promise<void> {
  const snap = await snapshotOf(db(r));
  const { deployments: deps, attempts, events } = snap;
  // §8.1, §8.2, §8.3; each attempt's transition chain and its start/end events
  expectStoreInvariants(snap);
  expectAttemptHistories(snap);
  // the model agrees with the store
  for (const [name, md] of m.deps) {
    const d = deps.find((x) => x.name === name && x.deleted_at === null);
    expect(d?.state, `state of ${name}`).toBe(md.state);
  }
  // §8.7: attempt states as the model says (final ones never overwritten); one attempt_end per end
  for (const ma of m.attempts.values()) {
    const a = attempts.find((x) => x.id === ma.id)!;
    expect(a.state, `attempt ${ma.id}`).toBe(ma.state);
    const ends = events.filter((e) => e.attempt_id === ma.id && e.type === 'attempt_end').length;
    expect(ends, `attempt_end count of ${ma.id}`).toBe(ma.ends);
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

class Create implements Cmd {
  constructor(readonly name: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    if (m.deps.has(this.name)) {
      await refused(r, 'DEPLOYMENT_EXISTS', () =>
        r.engine.createDeployment({ name: this.name, plan: 'ctl' }, OPER),
      );
    } else {
      const d = await r.engine.createDeployment({ name: this.name, plan: 'ctl' }, OPER);
      m.deps.set(this.name, { id: d.id, state: 'pending', current: null });
    }
    await checkInvariants(m, r);
  }
  toString = () => `create(${this.name})`;
}

class Start implements Cmd {
  constructor(
    readonly name: string,
    readonly kind: 'deploy' | 'teardown',
    readonly force: boolean,
    readonly admin: boolean,
    readonly confirmOk: boolean,
  ) {}
  check = (m: Model) => m.deps.has(this.name);
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const actor = this.admin ? ADMIN : OPER;
    const call =
      this.kind === 'deploy'
        ? () => r.engine.startDeploy(this.name, { force: this.force }, actor)
        : () =>
            r.engine.teardown(
              this.name,
              { confirm: this.confirmOk ? this.name : 'nope', force: this.force },
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
      const ma: MAttempt = { id: a.id, kind: this.kind, state: 'running', ends: 0 };
      m.attempts.set(a.id, ma);
      d.current = ma;
      d.state = this.kind === 'deploy' ? 'deploying' : 'tearing_down';
      await until(r, 'attempt running', async () => (await attemptState(r, a.id)) === 'running');
    }
    await checkInvariants(m, r);
  }
  toString = () =>
    `${this.kind}(${this.name}, force=${this.force}, admin=${this.admin}, confirm=${this.confirmOk})`;
}

const running = (m: Model, name: string) => m.deps.get(name)?.current?.state === 'running';

/** The current attempt's process exits with rc. */
class Exit implements Cmd {
  constructor(
    readonly name: string,
    readonly rc: number,
  ) {}
  check = (m: Model) => running(m, this.name);
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const a = d.current!;
    await tellExit(r, d.id, this.rc);
    await until(r, 'attempt end', async () => !active(await attemptState(r, a.id)));
    a.state = this.rc === 0 ? 'succeeded' : 'failed';
    a.ends = 1;
    d.state = endAs(a.kind, this.rc === 0);
    await checkInvariants(m, r);
  }
  toString = () => `exit(${this.name}, ${this.rc})`;
}

class Cancel implements Cmd {
  constructor(readonly name: string) {}
  check = (m: Model) => m.deps.has(this.name);
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const a = d.current;
    if (!a || !active(a.state)) {
      await refused(r, 'NO_INFLIGHT_ATTEMPT', () => r.engine.cancel(this.name, OPER));
    } else {
      await r.engine.cancel(this.name, OPER);
      await until(r, 'cancelled', async () => !active(await attemptState(r, a.id)));
      a.state = 'cancelled';
      a.ends = 1;
      d.state = 'failed';
    }
    await checkInvariants(m, r);
  }
  toString = () => `cancel(${this.name})`;
}

/** The process dies together with its supervisor: no exit record, the outcome is lost. */
class Kill implements Cmd {
  constructor(readonly name: string) {}
  check = (m: Model) => running(m, this.name);
  async run(m: Model, r: Real) {
    const d = m.deps.get(this.name)!;
    const a = d.current!;
    killAll(r, a.id);
    await until(r, 'unknown', async () => !active(await attemptState(r, a.id)));
    a.state = 'unknown';
    a.ends = 1;
    d.state = 'unknown';
    await checkInvariants(m, r);
  }
  toString = () => `kill(${this.name})`;
}

/** Durable evidence of a lost attempt's outcome turns up (its exit record). */
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
    a.ends = 2;
    if (owner && owner.state === 'unknown') owner.state = endAs(a.kind, this.rc === 0);
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

/** The server dies (attempts keep running); meanwhile running processes exit, die, or go on. */
class Crash implements Cmd {
  constructor(readonly meanwhile: 'none' | 'exit0' | 'exit1' | 'kill') {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.engine.close();
    const runningOnes = [...m.deps.values()].filter((d) => d.current?.state === 'running');
    for (const d of runningOnes) {
      const a = d.current!;
      if (this.meanwhile === 'kill') killAll(r, a.id);
      if (this.meanwhile === 'exit0' || this.meanwhile === 'exit1') {
        await tellExit(r, d.id, this.meanwhile === 'exit0' ? 0 : 1);
        const dir = runDir(r, a.id);
        const deadline = Date.now() + 10_000;
        while (!readExit(dir)) {
          if (Date.now() > deadline) throw new Error('no exit record');
          await new Promise((res) => setTimeout(res, 5));
        }
      }
    }
    r.engine = await open(r.dir, r.dialect);
    for (const d of runningOnes) {
      const a = d.current!;
      if (this.meanwhile === 'none') continue;
      await until(r, 'recovered', async () => !active(await attemptState(r, a.id)));
      a.ends = 1;
      if (this.meanwhile === 'kill') {
        a.state = 'unknown';
        d.state = 'unknown';
      } else {
        a.state = this.meanwhile === 'exit0' ? 'succeeded' : 'failed';
        d.state = endAs(a.kind, this.meanwhile === 'exit0');
      }
    }
    // After recovery no attempt is running without a live, verified process (§8.4)
    await checkInvariants(m, r);
  }
  toString = () => `crash(${this.meanwhile})`;
}

const name = fc.constantFrom(...NAMES);
const commands = [
  name.map((n) => new Create(n)),
  fc
    .tuple(
      name,
      fc.constantFrom('deploy' as const, 'teardown' as const),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
    )
    .map(([n, k, f, a, c]) => new Start(n, k, f, a, c)),
  fc.tuple(name, fc.constantFrom(0, 0, 1, 2)).map(([n, rc]) => new Exit(n, rc)),
  name.map((n) => new Cancel(n)),
  name.map((n) => new Kill(n)),
  fc.tuple(name, fc.constantFrom(0, 1)).map(([n, rc]) => new LateResult(n, rc)),
  fc
    .tuple(name, fc.constantFrom('ready' as const, 'failed' as const, 'torn_down' as const), fc.boolean())
    .map(([n, s, a]) => new Resolve(n, s, a)),
  fc.tuple(name, fc.boolean()).map(([n, f]) => new Delete(n, f)),
  fc
    .constantFrom('none' as const, 'exit0' as const, 'exit1' as const, 'kill' as const)
    .map((w) => new Crash(w)),
];

describe.each(DIALECTS)('lifecycle model (%s)', (dialect) => {
  it(
    `holds the invariants over ${runsOn(dialect)} random command sequences`,
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 14 }), async (cmds) => {
          const dir = tempDir('lifeline-model-');
          const real: Real = { dir, dialect, engine: await open(dir, dialect) };
          const model: Model = { deps: new Map(), attempts: new Map() };
          try {
            await fc.asyncModelRun(() => ({ model, real }), cmds);
          } finally {
            // leave nothing running behind
            for (const a of model.attempts.values()) if (active(a.state)) killAll(real, a.id);
            await real.engine.close();
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }),
        { numRuns: runsOn(dialect) },
      );
    },
    30 * 60_000,
  );
});
