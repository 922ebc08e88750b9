// Watches the attempts this instance owns: launches their supervisors, notices the start, tails
// output, enforces timeout and cancel, and ends the attempt from its exit record.
// Event-driven: an attempt is looked at when something happens to it (its supervisor exits, its
// run dir changes, a deadline or cancel-grace timer fires, a cancel is asked) and on the slow safety
// pass (reconcile, every reap interval). Idle attempts cost nothing in between. Work is taken in
// rounds of a bounded batch (one query per round): state changes first, then the safety pass, then
// output; each step is one bounded transaction, and a round of safety-pass or output work gives way
// as soon as a state change is woken, so neither a flooding attempt nor a pass over a thousand idle
// ones delays another's exit or cancel by more than one step.
import fs from 'node:fs';
import type { PlanConfig } from '../config/types.ts';
import { selectAttemptById, selectAttemptsByIds, setTimedOut } from '../store/attempts.ts';
import type { AttemptsTable } from '../store/schema.ts';
import {
  descendants,
  isAlive,
  processGroupOf,
  readStat,
  signalGroup,
  signalProcess,
  type ProcessIdentity,
} from '../runner/identity.ts';
import { launchAttempt } from '../runner/launch.ts';
import type { Launcher } from '../runner/launcher.ts';
import { readExit, readProcess, readSupervisor, runDirPaths } from '../runner/rundir.ts';
import { isStoreUnavailable } from '../store/errors.ts';
import { findPlan } from '../config/load.ts';
import { checkVerdict, verifiedBy } from '../domain/transitions.ts';
import type { AttemptKind } from '../domain/types.ts';
import { selectDeploymentById } from '../store/deployments.ts';
import { buildPlanEnv, ensureWorkspace } from '../runner/env.ts';
import { makeRedactor } from '../runner/redact.ts';
import { secretValues, type Ctx } from './context.ts';
import {
  endAttempt,
  ingestOutput,
  recordStarted,
  settleLate,
  skipOutput,
  type EndDetails,
} from './attempt-writes.ts';
import { runArgvCaptured, type CapturedCheck } from './check.ts';
import { clockNow, nowIso } from './ids.ts';

/** Attempts looked at per round (one query each round). */
const BATCH = 64;
/** With the lease lapsed, how often pending work is looked at again (until re-registration wakes us). */
const LAPSED_RETRY_MS = 250;
/** Retry of a signal the plan's group was not ready for (a few ms after its identity is written). */
const SIGNAL_RETRY_MS = 50;
/** Where inotify is unavailable (watch limit reached): how often an attempt is looked at anyway. */
const FALLBACK_POLL_MS = 1000;
/** Files whose change means a state change rather than more output. */
const RECORDS = new Set(['supervisor', 'process', 'exit']);
/** Output that fails this many times in a row (not a store outage) is skipped, marked, so the attempt can end. */
const INGEST_GIVE_UP = 3;
/** At most one log line per attempt this often for repeated ingestion failures. */
const INGEST_LOG_MS = 10_000;

interface Watch {
  /** Taken over after a restart or from a dead owner: its outcome is reported `recovered`. */
  recovered: boolean;
  termSentAt: number | null;
  killSent: boolean;
  fsw: fs.FSWatcher | null;
  poll: NodeJS.Timeout | null;
  timer: NodeJS.Timeout | null;
  timerAt: number;
  /** Consecutive ingestion failures that were not store outages, and when one was last logged. */
  ingestFailures: number;
  ingestLoggedAt: number;
  /** The plan's descendants seen when it was signalled: a setsid'd one is outside its group. */
  family: ProcessIdentity[];
  /**
   * When this instance asked for the attempt's supervisor, until the launcher says it was forked (or
   * failed): no supervisor trace yet then means "not started yet", not "lost". 0 = not launching.
   */
  launchedAt: number;
  /**
   * The supervisor this instance forked, until the launcher reports its exit (0: none). While it
   * lives, no trace yet means it is still starting: 200 forked at once can take longer than the start
   * deadline to write their records on a busy machine.
   */
  launchedPid: number;
  /** The verifying check after exit 0 (SPEC §9.3); only in memory: lost with us, run again by recovery. */
  check: { stop: () => void; result: CapturedCheck | null; redact: (s: string) => string } | null;
}

export interface LaunchSpec {
  attempt: AttemptsTable;
  deploymentName: string;
  plan: PlanConfig;
}

/** When the plan started: its identity file is written just before the exec, whenever we look. */
function startedAt(dir: string): string {
  try {
    return fs.statSync(runDirPaths(dir).process).mtime.toISOString();
  } catch {
    return nowIso();
  }
}

function size(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

function hasNewOutput(row: AttemptsTable): boolean {
  const f = runDirPaths(row.run_dir!);
  return (
    size(f.stdout) > Number(row.stdout_offset) ||
    size(f.stderr) > Number(row.stderr_offset) ||
    size(f.events) > Number(row.events_offset)
  );
}

export class Watcher {
  private watches = new Map<string, Watch>();
  /** Attempts accepted by this instance whose supervisor is being started: a cancel must wait for them. */
  private launching = new Set<string>();
  /**
   * To look at, in this order: state changes (exit, start, timers, cancel), the safety pass (every
   * watched attempt, in case an event was missed), then output. Insertion-ordered.
   */
  private urgent = new Set<string>();
  private sweep = new Set<string>();
  private output = new Set<string>();
  private running: Promise<void> | null = null;
  private idle: (() => void)[] = [];
  private closed = false;
  private lapsedRetry: NodeJS.Timeout | null = null;

  constructor(
    private ctx: Ctx,
    private launcher: Launcher,
  ) {}

  start(): void {
    this.wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.lapsedRetry) clearTimeout(this.lapsedRetry);
    for (const id of [...this.watches.keys()]) this.unwatch(id);
    await this.running;
    for (const f of this.idle.splice(0)) f();
  }

  isWatched(id: string): boolean {
    return this.watches.has(id) || this.launching.has(id);
  }

  expect(id: string): void {
    this.launching.add(id);
  }

  forget(id: string): void {
    this.launching.delete(id);
  }

  adopt(id: string, dir?: string | null): void {
    if (this.watches.has(id)) return;
    this.watch(id, true, dir ?? null);
    this.wake(id);
  }

  private watch(id: string, recovered: boolean, dir: string | null): void {
    const w: Watch = {
      recovered,
      termSentAt: null,
      killSent: false,
      fsw: null,
      poll: null,
      timer: null,
      timerAt: 0,
      ingestFailures: 0,
      ingestLoggedAt: 0,
      family: [],
      launchedAt: 0,
      launchedPid: 0,
      check: null,
    };
    this.watches.set(id, w);
    if (dir) this.listen(id, w, dir);
  }

  /** inotify on the run dir: a record renamed into place or output appended wakes the attempt. */
  private listen(id: string, w: Watch, dir: string): void {
    if (w.fsw || this.closed) return;
    try {
      w.fsw = fs.watch(dir, { persistent: false }, (_event, name) => {
        if (name && RECORDS.has(String(name))) this.wake(id);
        else this.wakeOutput(id);
      });
      w.fsw.on('error', () => {
        w.fsw?.close();
        w.fsw = null;
        this.fallback(id, w);
      });
    } catch {
      this.fallback(id, w); // no dir yet, or no inotify watch left
    }
  }

  private fallback(id: string, w: Watch): void {
    if (w.poll || this.closed) return;
    w.poll = setInterval(() => this.wake(id), FALLBACK_POLL_MS);
    w.poll.unref();
  }

  private unwatch(id: string): void {
    const w = this.watches.get(id);
    if (!w) return;
    w.fsw?.close();
    if (w.poll) clearInterval(w.poll);
    if (w.timer) clearTimeout(w.timer);
    w.check?.stop();
    this.watches.delete(id);
  }

  /** Wakes one attempt at `at` (epoch ms); keeps only the earliest pending timer. */
  private wakeAt(id: string, w: Watch, at: number): void {
    if (w.timer && w.timerAt <= at) return;
    if (w.timer) clearTimeout(w.timer);
    w.timerAt = at;
    w.timer = setTimeout(
      () => {
        w.timer = null;
        this.wake(id);
      },
      Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1),
    );
    w.timer.unref();
  }

  /** Starts the supervisor of a freshly accepted attempt. The process outlives this server. */
  async launch(spec: LaunchSpec): Promise<void> {
    const { attempt, plan } = spec;
    try {
      const res = launchAttempt({
        attempt: { ...attempt, run_dir: attempt.run_dir! },
        deploymentName: spec.deploymentName,
        plan,
        dataDir: this.ctx.config.dataDir,
        launcher: this.launcher,
      });
      if (res.kind === 'not_found') {
        this.ctx.log.warn(
          { attempt: attempt.id, program: res.program },
          'plan program not found or not executable',
        );
        await endAttempt(
          this.ctx,
          attempt.id,
          { kind: 'start_failed' },
          {
            rc: null,
            recovered: false,
            actor: 'runner',
            detail: `program not found or not executable: ${res.program}`,
          },
        );
        return;
      }
      this.watch(attempt.id, false, attempt.run_dir!);
      const w = this.watches.get(attempt.id)!;
      w.launchedAt = Date.now();
      // The runner forks the supervisor a moment after we ask (longer when it must start first).
      const child = res.child;
      child.once('spawn', () => {
        w.launchedAt = 0;
        w.launchedPid = child.pid ?? 0;
        this.wake(attempt.id);
      });
      const settled = () => {
        w.launchedAt = 0;
        w.launchedPid = 0;
        this.wake(attempt.id);
      };
      child.on('exit', settled);
      child.on('error', (err) => {
        this.ctx.log.error({ attempt: attempt.id, err: err.message }, 'supervisor failed to start');
        settled();
      });
    } catch (err) {
      this.ctx.log.error({ attempt: attempt.id, err: (err as Error).message }, 'launch failed');
      await endAttempt(
        this.ctx,
        attempt.id,
        { kind: 'start_failed' },
        {
          rc: null,
          recovered: false,
          actor: 'runner',
          detail: `could not start the plan: ${(err as Error).message}`,
        },
      );
    } finally {
      this.launching.delete(attempt.id);
      this.wake(attempt.id);
    }
  }

  /**
   * Looks at one attempt soon (a state may have changed), ahead of everything else; or at every
   * watched one (the safety pass), after any such state change.
   */
  wake(id?: string): void {
    if (this.closed) return;
    if (id === undefined) {
      for (const k of this.watches.keys()) if (!this.urgent.has(k)) this.sweep.add(k);
    } else if (this.watches.has(id)) {
      this.urgent.add(id);
      this.sweep.delete(id);
    }
    this.schedule();
  }

  private wakeOutput(id: string): void {
    if (this.closed || this.urgent.has(id)) return;
    this.output.add(id);
    this.schedule();
  }

  /** Nothing woken is waiting but output: whoever waits for a settled watcher may go on. */
  private settled(): void {
    if (this.urgent.size === 0 && this.sweep.size === 0) for (const f of this.idle.splice(0)) f();
  }

  private schedule(): void {
    if (this.running || this.closed) return;
    this.settled();
    if (this.urgent.size === 0 && this.sweep.size === 0 && this.output.size === 0) return;
    // Lapsed lease: rounds() would return at once and this would run it again in a microtask loop that
    // starves the event loop (no HTTP, no heartbeat to re-register). Look again later instead.
    if (!this.ctx.lease.live()) {
      this.lapsedRetry ??= setTimeout(() => {
        this.lapsedRetry = null;
        this.schedule();
      }, LAPSED_RETRY_MS);
      this.lapsedRetry.unref();
      return;
    }
    this.running = this.rounds().finally(() => {
      this.running = null;
      this.schedule();
    });
  }

  /**
   * Resolves once every attempt watched at the call has been looked at since, and every state change
   * seen has been recorded (an output backlog may remain: it is worked off in later rounds).
   */
  async settle(): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => this.idle.push(resolve));
    this.wake();
    await done;
  }

  /** The next round: up to BATCH attempts, each with the set it was taken from (urgent first). */
  private take(): { id: string; from: Set<string> }[] {
    const round: { id: string; from: Set<string> }[] = [];
    const taken = new Set<string>();
    for (const set of [this.urgent, this.sweep, this.output]) {
      for (const id of set) {
        if (round.length >= BATCH) return round;
        set.delete(id);
        if (taken.has(id)) continue;
        taken.add(id);
        round.push({ id, from: set });
      }
    }
    return round;
  }

  private async rounds(): Promise<void> {
    // Lapsed: no signals, no writes until re-registered (re-registering reconciles, which wakes us).
    if (!this.ctx.lease.live()) return;
    while (!this.closed && (this.urgent.size > 0 || this.sweep.size > 0 || this.output.size > 0)) {
      const round = this.take();
      const ids = round.map((r) => r.id);
      let rows: Map<string, AttemptsTable>;
      try {
        rows = new Map((await selectAttemptsByIds(this.ctx.store.db, ids)).map((r) => [r.id, r]));
      } catch (err) {
        // The safety pass looks again; retrying here would spin while the store is down.
        this.ctx.outage.failed('watch round', err);
        continue;
      }
      let routine = 0; // safety-pass and output steps done this round
      for (let i = 0; i < round.length; i++) {
        const { id, from } = round[i];
        if (this.closed) return;
        // A state change woken meanwhile goes first: the rest of this round goes back where it
        // came from (at least one routine step per round, so a stream of wakes cannot starve them).
        if (from !== this.urgent && routine > 0 && this.urgent.size > 0) {
          for (const r of round.slice(i))
            if (this.watches.has(r.id) && !this.urgent.has(r.id)) r.from.add(r.id);
          break;
        }
        if (from !== this.urgent) routine++;
        try {
          await this.step(id, rows.get(id));
          this.ctx.outage.ok();
        } catch (err) {
          // The attempt keeps running; its output and exit record wait on disk for the next look.
          this.ctx.outage.failed('watch step', err, { attempt: id });
        }
        await new Promise((r) => setImmediate(r));
      }
      this.settled();
    }
  }

  private async step(id: string, row: AttemptsTable | undefined): Promise<void> {
    const w = this.watches.get(id);
    if (!w) return;
    if (row && this.reclaimPending(row)) {
      // Ours under an earlier registration (the lease lapsed and was taken again): reconcile re-claims
      // it, then wakes every watched attempt. A row read before that claim must not drop the watch
      // (adopt() finds it watched and does nothing), or the attempt would wait for the next safety
      // pass: read it again, and while the claim is still to come, keep watching and do nothing.
      w.recovered = true;
      row = await selectAttemptById(this.ctx.store.db, id);
      if (row && this.reclaimPending(row)) return;
    }
    if (
      !row ||
      row.owner !== this.ctx.instanceId ||
      row.owner_epoch !== this.ctx.lease.epoch ||
      !row.run_dir
    ) {
      this.unwatch(id);
      return;
    }
    if (row.state === 'unknown') {
      await this.stepUnknown(row, w);
      return;
    }
    if (row.state !== 'queued' && row.state !== 'running') {
      this.unwatch(id);
      this.stopStray(row);
      return;
    }
    const dir = row.run_dir;
    this.listen(id, w, dir);
    const proc = readProcess(dir);
    if (row.state === 'queued') {
      if (!proc) {
        const alive = this.supervisorAlive(dir);
        if (!alive) await this.lose(row, w, 'queued');
        // Still starting: its records (fs.watch), the launcher's answer or this timer wake us.
        if (this.watches.has(id)) this.wakeAt(id, w, this.startingUntil(row, w, alive));
        return;
      }
      await recordStarted(this.ctx, id, proc, startedAt(dir));
      row = (await selectAttemptById(this.ctx.store.db, id))!;
    }
    if (!proc) {
      await this.lose(row, w, 'running');
      return;
    }
    // Liveness before the exit record: a supervisor that writes the record and exits between the
    // two reads is then still seen as alive, never as lost.
    const alive = isAlive(proc) || this.supervisorAlive(dir);
    const exit = readExit(dir);
    if (exit) {
      // One bounded transaction per turn; the end comes once the output is all in. Files no longer
      // than the cursors have nothing to ingest (cursors only grow, so an older row only errs
      // towards reading): the exit of a quiet plan is then recorded without reading them.
      if (hasNewOutput(row)) {
        if (await this.ingest(id, w, true)) {
          this.urgent.add(id);
          return;
        }
        if (w.ingestFailures > 0) return; // retried shortly (then skipped, marked)
      }
      const fresh = (await selectAttemptById(this.ctx.store.db, id))!;
      const cancelRequested = fresh.cancel_requested_at !== null;
      const timedOut = fresh.timed_out_at !== null;
      let check: EndDetails['check'];
      let unverified = false;
      if (exit.rc === 0 && !cancelRequested && !timedOut) {
        const verdict = await this.verify(fresh, w);
        if (verdict === 'pending') return; // the check's end wakes the attempt
        if (this.watches.get(id) !== w) return; // unwatched meanwhile (closing): not ours to end
        if (verdict) {
          check = verdict;
          unverified = !verifiedBy(fresh.kind as AttemptKind, checkVerdict(verdict.rc));
        }
      }
      await endAttempt(
        this.ctx,
        id,
        { kind: 'exit', rc: exit.rc, cancelRequested, timedOut, unverified },
        {
          rc: exit.rc,
          recovered: w.recovered,
          actor: 'runner',
          endedAt: new Date(exit.at).toISOString(),
          check,
        },
      );
      this.unwatch(id);
      return;
    }
    if (!alive) {
      await this.lose(row, w, 'running');
      return;
    }
    // Deadlines first and whatever ingestion does: output that cannot be read never stops a cancel.
    await this.enforceDeadlines(row, proc, w);
    if (hasNewOutput(row) && (await this.ingest(id, w, false))) this.output.add(id);
  }

  /** Active, ours, but under an epoch of ours that has lapsed: reconcile's claim is still to come. */
  private reclaimPending(row: AttemptsTable): boolean {
    return (
      row.owner === this.ctx.instanceId &&
      Number(row.owner_epoch ?? 0) !== this.ctx.lease.epoch &&
      (row.state === 'queued' || row.state === 'running')
    );
  }

  /**
   * An `unknown` attempt whose process still lives here (recovery adopted it): supervised as before,
   * so its timeout and a cancel still stop it, and its exit record corrects it (`late_result`).
   */
  private async stepUnknown(row: AttemptsTable, w: Watch): Promise<void> {
    const dir = row.run_dir!;
    this.listen(row.id, w, dir);
    const proc = readProcess(dir);
    const alive = (proc !== null && isAlive(proc)) || this.supervisorAlive(dir);
    if (readExit(dir)) {
      this.unwatch(row.id);
      await settleLate(this.ctx, row);
      return;
    }
    if (!alive || !proc) {
      // Nothing left to supervise (or never started): it stays unknown until evidence or an operator.
      if (!alive) this.unwatch(row.id);
      return;
    }
    await this.enforceDeadlines(row, proc, w);
    if (hasNewOutput(row) && (await this.ingest(row.id, w, false))) this.output.add(row.id);
  }

  /**
   * One ingestion transaction, its failure contained: a store outage is left to the next look (the
   * output waits on disk); any other failure is logged (rate-limited) and, after INGEST_GIVE_UP in a
   * row, the unreadable output is skipped with a marker so the attempt's end is never blocked by it.
   * Returns whether there may be more to read right away.
   */
  private async ingest(id: string, w: Watch, final: boolean): Promise<boolean> {
    try {
      const more = await ingestOutput(this.ctx, id, final);
      w.ingestFailures = 0;
      return more;
    } catch (err) {
      if (isStoreUnavailable(err)) throw err;
      w.ingestFailures++;
      const now = Date.now();
      if (now - w.ingestLoggedAt >= INGEST_LOG_MS) {
        w.ingestLoggedAt = now;
        this.ctx.log.error(
          { attempt: id, err: (err as Error).message, failures: w.ingestFailures },
          'output ingestion failed',
        );
      }
      if (w.ingestFailures < INGEST_GIVE_UP) {
        this.wakeAt(id, w, now + SIGNAL_RETRY_MS);
        return false;
      }
      w.ingestFailures = 0;
      await skipOutput(this.ctx, id, (err as Error).message);
      return true;
    }
  }

  /**
   * The plan's check after exit 0 when its kind is verified (SPEC §9.3): started once per watch,
   * 'pending' until it ends, then its masked result; null when the kind is not verified.
   */
  private async verify(row: AttemptsTable, w: Watch): Promise<EndDetails['check'] | 'pending' | null> {
    if (!w.check) {
      const dep = await selectDeploymentById(this.ctx.store.db, row.deployment_id);
      const plan = dep ? findPlan(this.ctx.config, dep.plan) : undefined;
      if (!dep || !plan?.check || !plan.verify[row.kind as AttemptKind]) return null;
      const workspace = ensureWorkspace(this.ctx.config.dataDir, dep.id);
      const env = buildPlanEnv(plan, {
        kind: 'check',
        params: row.params,
        deploymentId: dep.id,
        deploymentName: dep.name,
        workspace,
      });
      const run = runArgvCaptured(plan.check, env, workspace, plan.checkTimeoutMs);
      const redact = makeRedactor(secretValues(plan, JSON.parse(row.params), row.secret_params));
      // A check we stopped ourselves (unwatch, close) says nothing about the deployment: its
      // result is dropped, and whoever adopts the attempt runs the check again.
      let stopped = false;
      const stop = () => {
        stopped = true;
        run.stop();
      };
      const check: NonNullable<Watch['check']> = { stop, result: null, redact };
      w.check = check;
      void run.done.then((r) => {
        if (stopped) return;
        check.result = r;
        this.wake(row.id);
      });
      return 'pending';
    }
    const r = w.check.result;
    if (!r) return 'pending';
    return { rc: r.rc, verdict: checkVerdict(r.rc), lines: r.lines.map((l) => w.check!.redact(l)) };
  }

  private supervisorAlive(dir: string): boolean {
    const sup = readSupervisor(dir);
    return sup !== null && isAlive(sup);
  }

  /**
   * Nothing alive and no exit record: the outcome is lost. Decided on a fresh look, liveness first,
   * then the exit record: a supervisor writes its record before it dies, so a dead one with no record
   * never wrote it. A queued attempt without any supervisor trace waits for its start deadline.
   */
  private async lose(stale: AttemptsTable, w: Watch, seen: 'queued' | 'running'): Promise<void> {
    const dir = stale.run_dir!;
    const sup = readSupervisor(dir);
    const proc = readProcess(dir);
    if ((sup && isAlive(sup)) || (proc && isAlive(proc))) return;
    // The row too is read after the processes were seen dead: a cancel requested while this step ran
    // (seen first on Postgres, where a step's reads take longer) must count as the reason they are gone.
    const row = (await selectAttemptById(this.ctx.store.db, stale.id)) ?? stale;
    if (readExit(dir)) {
      // A record without a plan identity: the supervisor could not record the plan, so never started it.
      if (!proc) {
        const detail = 'the supervisor could not record the plan, so did not start it';
        await this.end(row, w, { kind: 'start_failed' }, detail);
      } else this.urgent.add(row.id); // with a plan identity, the next turn finishes it from the record
      return;
    }
    if (seen === 'running' && row.cancel_requested_at !== null) {
      // Cancel is proven by the process being gone (SPEC §2.2), even when it left no exit code.
      await this.end(row, w, {
        kind: 'exit',
        rc: null,
        cancelRequested: true,
        timedOut: row.timed_out_at !== null,
      });
      return;
    }
    let reason: 'exit_unobserved' | 'start_interrupted' = 'exit_unobserved';
    if (seen === 'queued' && !proc) {
      if (!sup && Date.now() < this.startingUntil(row, w, false)) return;
      reason = 'start_interrupted';
    }
    await this.end(row, w, { kind: 'lost', reason });
  }

  /**
   * Until when a queued attempt with no plan identity yet counts as starting, not lost (on the
   * process's clock). A supervisor that is alive, or that this instance forked and has not been told
   * is gone, is starting; a request still waiting on the launcher has the start deadline from the
   * later of its asking and the launcher's last progress; anything else, from queued_at.
   */
  private startingUntil(row: AttemptsTable, w: Watch, supervisorAlive: boolean): number {
    const now = Date.now();
    const deadline = this.ctx.config.startDeadlineMs;
    if (supervisorAlive || (w.launchedPid > 0 && readStat(w.launchedPid))) return now + deadline;
    // queued_at is on this instance's clock (nowIso); timers run on the process's.
    let until = Date.parse(row.queued_at) + deadline - (clockNow() - now);
    if (w.launchedAt > 0)
      until = Math.max(until, Math.max(w.launchedAt, this.launcher.lastProgressAt()) + deadline);
    return until;
  }

  private async end(
    row: AttemptsTable,
    w: Watch,
    outcome: Parameters<typeof endAttempt>[2],
    detail?: string,
  ): Promise<void> {
    while ((await this.ingest(row.id, w, true)) || w.ingestFailures > 0)
      await new Promise((r) => setImmediate(r));
    await endAttempt(this.ctx, row.id, outcome, {
      rc: null,
      recovered: w.recovered,
      actor: 'runner',
      detail,
    });
    this.unwatch(row.id);
  }

  private async enforceDeadlines(row: AttemptsTable, proc: ProcessIdentity, w: Watch): Promise<void> {
    const now = Date.now();
    const deadline = row.started_at ? Date.parse(row.started_at) + Number(row.timeout_ms) : null;
    if (row.timed_out_at === null && deadline !== null && now > deadline) {
      await setTimedOut(this.ctx.store.db, row.id, nowIso());
      row = { ...row, timed_out_at: nowIso() };
      this.ctx.log.info({ attempt: row.id }, 'attempt timed out; terminating');
    }
    if (row.cancel_requested_at === null && row.timed_out_at === null) {
      if (deadline !== null) this.wakeAt(row.id, w, deadline + 1);
      return;
    }
    // signalGroup refuses until the plan's group exists (a few ms after its identity is written):
    // only a delivered signal counts, otherwise a timer tries again.
    const grace = Number(row.cancel_grace_ms);
    // Descendants are looked up before the group is signalled, while they are still below the plan
    // (once it dies they are reparented); only those that left its group (setsid) get their own signal,
    // after the group's, so the plan sees its group signalled exactly as before.
    const family = (signal: NodeJS.Signals) => {
      for (const d of descendants(proc)) if (!w.family.some((f) => f.pid === d.pid)) w.family.push(d);
      return () => {
        for (const d of w.family) if (processGroupOf(d.pid) !== proc.pid) signalProcess(d, signal);
      };
    };
    if (w.termSentAt === null) {
      const strays = family('SIGTERM');
      if (signalGroup(proc, 'SIGTERM')) w.termSentAt = now;
      strays();
      this.wakeAt(row.id, w, w.termSentAt === null ? now + SIGNAL_RETRY_MS : now + grace);
    } else if (!w.killSent && now - w.termSentAt >= grace) {
      const strays = family('SIGKILL');
      if (signalGroup(proc, 'SIGKILL')) w.killSent = true;
      else this.wakeAt(row.id, w, now + SIGNAL_RETRY_MS);
      strays();
    } else if (!w.killSent) {
      this.wakeAt(row.id, w, w.termSentAt + grace);
    }
  }

  /** A process still alive for an attempt cancelled before start (the cancel won a race with the launch). */
  private stopStray(row: AttemptsTable): void {
    if (row.state !== 'cancelled') return;
    const proc = readProcess(row.run_dir!);
    if (proc && !readExit(row.run_dir!) && isAlive(proc)) signalGroup(proc, 'SIGKILL');
  }
}
