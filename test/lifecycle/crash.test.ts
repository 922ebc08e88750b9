// Crash test (issue 2, SPEC §5 and §8.1–8.5): the engine runs in a child process that keeps creating
// deployments and starting, cancelling and resolving attempts of the `crash` plan (random line
// counts, sleeps and exit codes); the test SIGKILLs it at a random moment, and while it is down
// sometimes kills one attempt together with its supervisor, sometimes lets the short attempts
// finish. The next child, on the same data dir, recovers at start(); the test then checks what
// recovery left against the run dirs (the runner's durable truth) and the database:
//   1. no attempt is `running` without a live, identity-verified process;
//   2. every exit record present when recovery began is honoured (final state, the record's rc);
//   3. an attempt killed together with its supervisor is `unknown` / `exit_unobserved`, and no other
//      is reported lost (`exit_unobserved` only for those, `start_interrupted` only past the start
//      deadline: the engine's death kills no attempt here);
//   4. SPEC §8.1–8.3 (fold, one active attempt, seq gap-free) and each attempt's own history;
//   5. log_line events are the output files' lines up to the cursors, once and in order; attempts
//      that ran to their end printed exactly what their params say;
//   6. one attempt_start per started attempt, one attempt_end per ended one (two for late results);
//   7. verified outcomes (SPEC §9.3): attempts of the `crashv` plan that exited 0 (and were not cancelled
//      or timed out) ended only through their check, whose verdict (from the params) decided, even when
//      the engine was killed during the check or between the exit and the check; no other attempt has a
//      check_result; the check's trail is one transaction (expectCheckHistories).
//   8. automatic retry (SPEC §9.1): each deploy of the `crashr` plan that failed by exit code or timeout
//      got exactly one retry_scheduled while retries were left (else one retry_exhausted), and every
//      retry attempt started from exactly one schedule, none twice, across SIGKILLs (expectRetryHistories).
// At the end an engine in this process recovers once more, cancels what still runs, and checks the
// same with every attempt ended. LIFELINE_CRASH_CYCLES sets the number of cycles (default 12; 60 under
// LIFELINE_TEST_FULL=1). What a cycle does follows its number modulo 4 (killed during recovery or after
// it; short attempts let finish while down) and modulo 3 (one attempt killed with its supervisor while
// down): 12 cycles are one whole period, so the default run meets each combination once.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { LifelineError } from '../../src/domain/errors.ts';
import { parseOutputs } from '../../src/domain/outputs.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { isAlive, type ProcessIdentity } from '../../src/runner/identity.ts';
import { readExit, readProcess, readSupervisor, runDirPaths } from '../../src/runner/rundir.ts';
import type { AttemptsTable, EventsTable } from '../../src/store/schema.ts';
import {
  crashChildCommand,
  crashConfig,
  crashPlans,
  expectedOutput,
  LONG_SLEEP,
  RETRY_MAX,
  RETRY_PLAN,
  VERIFIED_PLAN,
  type CrashParams,
} from '../helpers/crash.ts';
import { OPERATOR, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';
import {
  eventsByAttempt,
  expectAttemptHistories,
  expectCheckHistories,
  expectRetryHistories,
  expectStoreInvariants,
  isActive,
  isBusy,
  isFinal,
  snapshotOfFile,
  type StoreSnapshot,
} from '../helpers/invariants.ts';

const CYCLES = Number(process.env.LIFELINE_CRASH_CYCLES ?? scaled(12, 60));
const REPO = path.resolve(import.meta.dirname, '../..');

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const randInt = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** One engine process, spawned ahead of its turn: loading the engine takes a while on a busy machine. */
class ChildEngine {
  readonly proc: ChildProcess;
  private out = '';
  stderr = '';
  private exited: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(args: string[], dataDir: string) {
    this.proc = spawn(process.execPath, [...args, dataDir], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      this.out += s;
      for (const w of this.waiters.splice(0)) w();
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.proc.stdin!.on('error', () => undefined); // EPIPE after a kill
    this.exited = new Promise((res) => this.proc.once('exit', () => res()));
    this.exited.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Resolves when the child has printed `line`; throws if it dies first or the deadline passes. */
  async said(line: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.out.split('\n').includes(line)) {
      if (!this.alive) throw new Error(`engine child died before saying ${line}:\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`engine child did not say ${line}:\n${this.stderr}`);
      await new Promise<void>((res) => {
        this.waiters.push(res);
        setTimeout(res, 250);
      });
    }
  }

  send(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  async kill(): Promise<void> {
    if (this.alive) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

function identityOf(a: AttemptsTable): ProcessIdentity | null {
  if (a.pid === null || a.process_start === null || a.boot_id === null) return null;
  return { pid: Number(a.pid), start: a.process_start, boot: a.boot_id };
}

/** The attempt's plan process or its supervisor is still alive (identity-verified). */
function anyAlive(a: AttemptsTable): boolean {
  if (!a.run_dir) return false;
  const ids = [identityOf(a), readProcess(a.run_dir), readSupervisor(a.run_dir)];
  return ids.some((id) => id !== null && isAlive(id));
}

/** SIGKILLs the process group led by a verified identity (and the pid itself, should it lead none yet). */
function killGroup(id: ProcessIdentity | null): void {
  if (!id || !isAlive(id)) return;
  for (const target of [-id.pid, id.pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function killEverything(dataDir: string): void {
  const root = path.join(dataDir, 'attempts');
  if (!fs.existsSync(root)) return;
  for (const id of fs.readdirSync(root)) {
    const dir = path.join(root, id);
    killGroup(readSupervisor(dir));
    killGroup(readProcess(dir));
  }
}

function readBytes(file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

function linesOf(buf: Buffer): string[] {
  if (buf.length === 0) return [];
  const lines = buf.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => l.replace(/\r$/, ''));
}

/** Polls until cond() holds or the deadline passes; says which. Not an assertion: it only paces the test. */
async function pollUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
  return true;
}

interface Stats {
  cycles: number;
  victims: number;
  waitedForFinish: number;
  /** Verifying checks that decided, and of those the ones an engine decided after a restart. */
  checks: number;
  checksAfterRestart: number;
  /** Retry attempts (SPEC §9.1) started, and schedules they left: waiting, cancelled, exhausted chains. */
  retries: { started: number; scheduled: number; exhausted: number };
  /** Milliseconds spent waiting for children to load, to recover, checking, and with the engine down. */
  ms: { load: number; recover: number; verify: number; down: number };
}

class Checker {
  /** Attempts that were active or unknown, with an exit record, when an engine began recovering: their rc. */
  readonly honour = new Map<string, number>();
  /** Of those, the ones recovery itself had to finish (they were queued/running): ended `recovered`. */
  readonly recoveredOnes = new Set<string>();
  /** Killed together with their supervisor, no exit record: lost for good. */
  readonly lost = new Set<string>();
  /** Attempts whose whole expected output was checked, and how many lines that was. */
  readonly fullLogs = new Map<string, number>();
  readonly stats: Stats = {
    cycles: 0,
    victims: 0,
    waitedForFinish: 0,
    checks: 0,
    checksAfterRestart: 0,
    retries: { started: 0, scheduled: 0, exhausted: 0 },
    ms: { load: 0, recover: 0, verify: 0, down: 0 },
  };

  constructor(
    readonly dbFile: string,
    readonly startDeadlineMs: number,
  ) {}

  /** While no engine runs: write down which outcomes the runner recorded, before recovery looks. */
  notePreRecovery(): StoreSnapshot {
    const snap = snapshotOfFile(this.dbFile);
    for (const a of snap.attempts) {
      if (!a.run_dir || !(isActive(a.state) || a.state === 'unknown')) continue;
      const exit = readExit(a.run_dir);
      if (!exit) continue;
      this.honour.set(a.id, exit.rc);
      if (isActive(a.state)) this.recoveredOnes.add(a.id);
    }
    return snap;
  }

  /** Checks 1–6 on the database as it is now (an engine may be running and writing). */
  verify(label: string, opts: { allEnded?: boolean } = {}): StoreSnapshot {
    const snap = snapshotOfFile(this.dbFile);
    const ctx = (a: AttemptsTable, what: string) =>
      `${label}: ${what} of attempt ${a.id} (${a.kind} ${a.state}/${a.reason} rc=${a.rc} params=${a.params})`;
    // 4. SPEC §8.1–8.3, and 6. the start/end events
    expectStoreInvariants(snap);
    expectAttemptHistories(snap);
    expectCheckHistories(snap);
    // 8. automatic retry's trail: each retry attempt started from exactly one schedule, no schedule twice
    expectRetryHistories(snap);
    const byAttempt = eventsByAttempt(snap);
    const planOf = new Map(snap.deployments.map((d) => [d.id, d.plan]));
    let checks = 0;
    let checksAfterRestart = 0;
    for (const a of snap.attempts) {
      const dir = a.run_dir;
      if (opts.allEnded) expect(isActive(a.state), ctx(a, 'still active at the end')).toBe(false);
      // 1. running only with a live, verified process. Liveness first, then the exit record: a
      //    process that exits between the two reads has written its record by then.
      if (a.state === 'running') {
        const id = identityOf(a);
        expect(id, ctx(a, 'recorded identity')).not.toBeNull();
        const ok = isAlive(id!) || (dir !== null && anyAlive(a)) || (dir !== null && readExit(dir) !== null);
        expect(ok, ctx(a, 'running without a live process')).toBe(true);
      }
      // 2. every exit record present when recovery began is honoured
      const rc = this.honour.get(a.id);
      // (an exit 0 of the verified plan stays `running` while recovery's check decides, SPEC §9.3)
      const checking =
        rc === 0 && planOf.get(a.deployment_id) === VERIFIED_PLAN && a.state === 'running' && !opts.allEnded;
      if (rc !== undefined && !checking) {
        expect(isFinal(a.state), ctx(a, 'recorded exit not honoured')).toBe(true);
        // (runner_error: the supervisor's own 125, the plan never ran; not the plan's rc)
        if (a.reason !== 'runner_error') expect(a.rc === null ? null : Number(a.rc), ctx(a, 'rc')).toBe(rc);
        if (this.recoveredOnes.has(a.id)) expect(Number(a.recovered), ctx(a, 'recovered flag')).toBe(1);
      }
      // ... and any final attempt that ran agrees with its exit record
      const exit = dir ? readExit(dir) : null;
      if (exit && isFinal(a.state) && a.started_at !== null && a.reason !== 'runner_error') {
        expect(a.rc === null ? null : Number(a.rc), ctx(a, 'rc against the exit record')).toBe(exit.rc);
        if (a.state === 'succeeded') expect(exit.rc).toBe(0);
        if (a.state === 'failed' && a.reason === 'exit_nonzero') expect(exit.rc).not.toBe(0);
      }
      // 3. killed with its supervisor: lost
      if (this.lost.has(a.id)) {
        expect({ state: a.state, reason: a.reason, rc: a.rc }, ctx(a, 'lost attempt')).toEqual({
          state: 'unknown',
          reason: 'exit_unobserved',
          rc: null,
        });
      }
      // ... and conversely, nothing is reported lost that was not: the engine's death never kills an
      // attempt and no supervisor here dies before it starts its plan, so `exit_unobserved` means
      // one the test killed, and `start_interrupted` one that waited out its start deadline (its
      // engine died between accepting it and launching its supervisor).
      const firstEnd = (byAttempt.get(a.id) ?? []).find((e) => e.type === 'attempt_end');
      if (firstEnd) {
        const reason = JSON.parse(firstEnd.data).reason as string | null;
        expect(reason, ctx(a, 'reason of the first end')).not.toBe('runner_lost');
        if (reason === 'exit_unobserved') expect(this.lost.has(a.id), ctx(a, 'reported lost')).toBe(true);
        if (reason === 'start_interrupted') {
          const waited = Date.parse(firstEnd.at) - Date.parse(a.queued_at);
          expect(waited, ctx(a, 'start_interrupted before the start deadline')).toBeGreaterThanOrEqual(
            this.startDeadlineMs,
          );
        }
      }
      // 5. logs
      this.checkLogs(a, byAttempt.get(a.id) ?? [], ctx);
      // 7. verified outcomes
      const decided = this.checkVerification(a, planOf.get(a.deployment_id), byAttempt.get(a.id) ?? [], ctx);
      // 8. automatic retry
      this.checkRetry(a, planOf.get(a.deployment_id), byAttempt.get(a.id) ?? [], ctx);
      if (decided) {
        checks += 1;
        if (Number(a.recovered) === 1) checksAfterRestart += 1;
      }
    }
    // 9. outputs (SPEC §12.1): a succeeded attempt of a crash plan holds what it published, and a
    //    deployment whose current attempt succeeded holds that deploy's outputs, or none after a teardown
    //    (written in the end's transaction, whatever crashed around it; the fold is checked above)
    const crashPlanNames = new Set(Object.keys(crashPlans()));
    const published = (plan: string | undefined) => plan !== undefined && crashPlanNames.has(plan);
    for (const a of snap.attempts) {
      if (a.state !== 'succeeded' || !published(planOf.get(a.deployment_id))) continue;
      expect(parseOutputs(a.outputs), ctx(a, 'outputs')).toEqual({ attempt: a.id });
    }
    for (const d of snap.deployments) {
      const cur = snap.attempts.find((a) => a.id === d.current_attempt_id);
      if (!cur || cur.state !== 'succeeded' || !published(d.plan)) continue;
      if (d.state !== (cur.kind === 'deploy' ? 'ready' : 'torn_down')) continue;
      expect(parseOutputs(d.outputs), `${label}: outputs of deployment ${d.id}`).toEqual(
        cur.kind === 'deploy' ? { attempt: cur.id } : {},
      );
    }
    this.stats.checks = checks;
    this.stats.checksAfterRestart = checksAfterRestart;
    this.stats.retries = {
      started: snap.attempts.filter((a) => a.retry_number != null).length,
      scheduled: snap.events.filter((e) => e.type === 'retry_scheduled').length,
      exhausted: snap.events.filter((e) => e.type === 'retry_exhausted').length,
    };
    if (opts.allEnded) {
      for (const d of snap.deployments)
        expect(isBusy(d.state), `${label}: deployment ${d.id} busy`).toBe(false);
    }
    return snap;
  }

  /**
   * Check 8 for one attempt (SPEC §9.1): a deploy of the retry plan that failed by its exit code or its
   * timeout got exactly one retry_scheduled with its failure when retries were left, else exactly one
   * retry_exhausted; any other attempt neither. (One start per schedule: expectRetryHistories.)
   */
  private checkRetry(
    a: AttemptsTable,
    plan: string | undefined,
    evs: EventsTable[],
    ctx: (a: AttemptsTable, what: string) => string,
  ): void {
    const retried =
      plan === RETRY_PLAN &&
      a.kind === 'deploy' &&
      a.state === 'failed' &&
      (a.reason === 'exit_nonzero' || a.reason === 'timeout');
    const n = Number(a.retry_number ?? 0);
    const count = (type: string) => evs.filter((e) => e.type === type).length;
    expect(count('retry_scheduled'), ctx(a, 'retry_scheduled count')).toBe(retried && n < RETRY_MAX ? 1 : 0);
    expect(count('retry_exhausted'), ctx(a, 'retry_exhausted count')).toBe(retried && n >= RETRY_MAX ? 1 : 0);
  }

  /** Check 7 for one attempt; says whether its verifying check decided its end. */
  private checkVerification(
    a: AttemptsTable,
    plan: string | undefined,
    evs: EventsTable[],
    ctx: (a: AttemptsTable, what: string) => string,
  ): boolean {
    const results = evs.filter((e) => e.type === 'check_result').map((e) => JSON.parse(e.data));
    const end = evs.find((e) => e.type === 'attempt_end');
    const first = end ? JSON.parse(end.data) : null;
    // Ended by its exit code 0 (not cancel, not timeout): the only ends a verifying check decides.
    const exitedZero =
      first !== null && first.rc === 0 && (first.state === 'succeeded' || first.reason === 'unverified');
    if (plan !== VERIFIED_PLAN || !exitedZero) {
      expect(results, ctx(a, 'check_result without a verifying check')).toEqual([]);
      return false;
    }
    const params = JSON.parse(a.params) as Required<CrashParams>;
    expect(
      results.map((r) => r.rc),
      ctx(a, 'the verifying check decided, once, with the rc its params say'),
    ).toEqual([params.check_rc]);
    const lines = evs
      .filter((e) => e.type === 'log_line')
      .map((e) => JSON.parse(e.data))
      .filter((l) => l.stream === 'check')
      .map((l) => l.text);
    expect(lines, ctx(a, 'check lines')).toEqual(['checking', `verdict ${params.check_rc}`]);
    return true;
  }

  private checkLogs(
    a: AttemptsTable,
    evs: EventsTable[],
    ctx: (a: AttemptsTable, what: string) => string,
  ): void {
    const logs = evs.filter((e) => e.type === 'log_line').map((e) => JSON.parse(e.data));
    const out = logs.filter((l) => l.stream === 'stdout').map((l) => l.text as string);
    const err = logs.filter((l) => l.stream === 'stderr').map((l) => l.text as string);
    if (!a.run_dir) {
      expect(logs, ctx(a, 'log lines without a run dir')).toEqual([]);
      return;
    }
    // Decide "nothing of it runs any more" before reading the files, so they cannot grow after.
    const ended = !isActive(a.state);
    const cancelledBeforeStart = a.state === 'cancelled' && a.started_at === null;
    const lateResultPending = a.state === 'unknown' && readExit(a.run_dir) !== null;
    const complete = ended && !cancelledBeforeStart && !lateResultPending && !anyAlive(a);
    const files = runDirPaths(a.run_dir);
    const stdout = readBytes(files.stdout);
    const stderr = readBytes(files.stderr);
    // The events are exactly the file's lines up to the cursor: none lost, none twice, in order.
    expect(out, ctx(a, 'stdout events against the file up to the cursor')).toEqual(
      linesOf(stdout.subarray(0, Number(a.stdout_offset))),
    );
    expect(err, ctx(a, 'stderr events against the file up to the cursor')).toEqual(
      linesOf(stderr.subarray(0, Number(a.stderr_offset))),
    );
    if (complete) {
      // Ended and nothing alive: everything it wrote has been turned into events.
      expect(Number(a.stdout_offset), ctx(a, 'stdout cursor at the end')).toBe(stdout.length);
      expect(Number(a.stderr_offset), ctx(a, 'stderr cursor at the end')).toBe(stderr.length);
    }
    // What the plan prints is known from its params: what we have is a prefix of it, and all of it
    // when the plan ran to its own exit (rc is the one it was told to exit with).
    const params = JSON.parse(a.params) as CrashParams;
    const want = expectedOutput(params);
    expect(out, ctx(a, 'stdout is a prefix of the expected output')).toEqual(
      want.stdout.slice(0, out.length),
    );
    expect(err, ctx(a, 'stderr is a prefix of the expected output')).toEqual(
      want.stderr.slice(0, err.length),
    );
    if (complete && a.rc !== null && Number(a.rc) === params.rc) {
      expect(out, ctx(a, 'stdout of a finished attempt')).toEqual(want.stdout);
      expect(err, ctx(a, 'stderr of a finished attempt')).toEqual(want.stderr);
      this.fullLogs.set(a.id, out.length + err.length);
    }
  }

  /** While no engine runs: kill one running attempt's supervisor and plan process groups. */
  async killOne(snap: StoreSnapshot): Promise<void> {
    const candidates = snap.attempts.filter((a) => {
      if (!isActive(a.state) || !a.run_dir || a.cancel_requested_at !== null || a.timed_out_at !== null)
        return false;
      const proc = readProcess(a.run_dir);
      return proc !== null && isAlive(proc) && readExit(a.run_dir) === null;
    });
    if (candidates.length === 0) return;
    const a = candidates[randInt(0, candidates.length - 1)];
    const dir = a.run_dir!;
    const sup = readSupervisor(dir);
    const proc = readProcess(dir);
    // The supervisor first, so it cannot write an exit record for the plan it loses.
    killGroup(sup);
    killGroup(proc);
    await waitFor(
      () => !(sup && isAlive(sup)) && !(proc && isAlive(proc)),
      `attempt ${a.id}'s processes to die`,
      10_000,
    );
    // Had it just exited, its supervisor may have written the record first: then it must be honoured.
    if (readExit(dir) === null) {
      this.lost.add(a.id);
      this.stats.victims += 1;
    }
  }

  /** While no engine runs: let every short attempt's processes finish (long sleepers keep running). */
  async letShortOnesFinish(snap: StoreSnapshot): Promise<void> {
    const short = snap.attempts.filter(
      (a) => isActive(a.state) && (JSON.parse(a.params) as CrashParams).sleep < LONG_SLEEP,
    );
    if (await pollUntil(() => short.every((a) => !anyAlive(a)), 15_000)) this.stats.waitedForFinish += 1;
  }
}

// SQLite only: the checker reads the database file directly between kills of the child engine, and the
// single-instance file lock is part of what a killed engine leaves behind. Postgres restarts and kills
// are the multi-instance and chaos tests' ground.
describe('crash test', () => {
  it(
    `keeps the truth through ${CYCLES} SIGKILLs of the engine at random moments`,
    async () => {
      const started = Date.now();
      const dir = tempDir('lifeline-crash-');
      const config = crashConfig(dir);
      const dbFile = config.db.slice('sqlite:'.length);
      const checker = new Checker(dbFile, config.startDeadlineMs);
      const command = await crashChildCommand();
      const children: ChildEngine[] = [];
      const spawnChild = () => {
        const c = new ChildEngine(command.args, dir);
        children.push(c);
        return c;
      };
      let engine: Lifeline | null = null;
      try {
        const ms = checker.stats.ms;
        const timed = async <T>(k: keyof Stats['ms'], f: () => Promise<T> | T): Promise<T> => {
          const t0 = Date.now();
          try {
            return await f();
          } finally {
            ms[k] += Date.now() - t0;
          }
        };
        let next = spawnChild();
        for (let cycle = 0; cycle < CYCLES; cycle++) {
          const child = next;
          await timed('load', () => child.said('loaded'));
          // Every 4th engine is killed at a random moment from its opening, which may fall inside
          // its recovery; the others wait after recovery so the test can check what it produced.
          const pause = cycle % 4 !== 3;
          child.send(pause ? 'open pause' : 'open run');
          next = spawnChild(); // warms up while this one runs
          if (pause) {
            await timed('recover', () => child.said('recovered'));
            await timed('verify', () => checker.verify(`after recovery ${cycle}`));
            child.send('go');
          }
          await sleep(pause ? randInt(200, 1500) : randInt(0, 1500));
          expect(child.alive, `engine ${cycle} died on its own:\n${child.stderr}`).toBe(true);
          await child.kill();
          expect(child.stderr, `engine ${cycle} reported errors`).toBe('');
          checker.stats.cycles += 1;

          // The engine is down; its attempts are not.
          if (!fs.existsSync(dbFile)) continue;
          await timed('down', async () => {
            const snap = snapshotOfFile(dbFile);
            if (cycle % 3 === 2) await checker.killOne(snap);
            if (cycle % 4 === 1) await checker.letShortOnesFinish(snap);
            checker.notePreRecovery();
          });
        }
        await next.kill();

        // A last recovery, in this process; then cancel what runs and check everything ended.
        engine = await openLifeline({ config, logger: quietLogger() });
        await engine.start();
        checker.verify('final recovery');
        // One verified deploy run to its check's verdict with no kill, so that the check path is covered
        // whatever the random schedule did (12 cycles decided 1 to 12 such checks, and none once on a
        // busy machine). It is checked below with the rest.
        const params = { lines: 2, sleep: 0, rc: 0, check_rc: 0, check_sleep: 0 };
        await engine.createDeployment({ name: 'final-verified', plan: VERIFIED_PLAN, params }, OPERATOR);
        const lastId = (await engine.startDeploy('final-verified', { params }, OPERATOR)).id;
        const eng0 = engine;
        await waitFor(
          async () => !isActive((await eng0.getAttempt(lastId)).state),
          'the final verified deploy to end',
          30_000,
        );
        expect((await engine.getDeployment('final-verified')).state).toBe('ready');
        const deps = (await engine.listDeployments({ limit: 500 })).items;
        for (const d of deps.filter((x) => isBusy(x.state))) {
          try {
            await engine.cancel(d.name, OPERATOR);
          } catch (err) {
            if (!(err instanceof LifelineError) || err.code !== 'NO_INFLIGHT_ATTEMPT') throw err;
          }
        }
        const eng = engine;
        await waitFor(
          async () => {
            await eng.settle();
            return snapshotOfFile(dbFile).attempts.every((a) => !isActive(a.state));
          },
          'every attempt to end after the final cancel',
          30_000,
        );
        await engine.reconcileNow();
        const final = checker.verify('final', { allEnded: true });
        await engine.close();
        engine = null;

        // The test must have exercised what it claims to.
        const count = (f: (a: AttemptsTable) => boolean) => final.attempts.filter(f).length;
        const summary = {
          seconds: Math.round((Date.now() - started) / 100) / 10,
          ...checker.stats,
          honoured: checker.honour.size,
          recoveredByRestart: checker.recoveredOnes.size,
          fullLogs: checker.fullLogs.size,
          fullLogLines: [...checker.fullLogs.values()].reduce((x, y) => x + y, 0),
          deployments: final.deployments.length,
          attempts: final.attempts.length,
          events: final.events.length,
          // late results and what the attempt had been reported as before its exit record turned up
          lateResults: final.attempts
            .filter((a) => a.reason === 'late_result')
            .map((a) => {
              const first = final.events.find((e) => e.attempt_id === a.id && e.type === 'attempt_end')!;
              const ms = Date.parse(first.at) - Date.parse(a.queued_at);
              return `${JSON.parse(first.data).reason} ${ms} ms after it was queued`;
            }),
          byOutcome: Object.fromEntries(
            [...new Set(final.attempts.map((a) => `${a.state}/${a.reason}`))]
              .sort()
              .map((k) => [k, count((a) => `${a.state}/${a.reason}` === k)]),
          ),
        };
        console.log(`crash test: ${JSON.stringify(summary)}`);
        expect(checker.stats.cycles).toBe(CYCLES);
        expect(final.attempts.length).toBeGreaterThan(CYCLES);
        expect(checker.honour.size, 'exit records recovery had to honour').toBeGreaterThan(0);
        // (every 3rd cycle kills one running attempt, if one runs: with 3 chances, one always has)
        if (CYCLES >= 9)
          expect(checker.stats.victims, 'attempts lost with their supervisor').toBeGreaterThan(0);
        expect(checker.fullLogs.size, 'attempts whose whole output was checked').toBeGreaterThan(0);
        expect(checker.stats.checks, 'attempts a verifying check decided').toBeGreaterThan(0);
        expect(checker.stats.retries.scheduled, 'automatic retries scheduled').toBeGreaterThan(0);
        expect(checker.stats.retries.started, 'automatic retries started').toBeGreaterThan(0);
      } finally {
        for (const c of children) await c.kill();
        await engine?.close().catch(() => undefined);
        killEverything(dir);
        fs.rmSync(dir, { recursive: true, force: true });
        command.dispose();
      }
    },
    Math.max(180_000, CYCLES * 9_000),
  );
});
