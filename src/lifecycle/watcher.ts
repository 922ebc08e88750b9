// Watches the attempts this instance owns: launches their supervisors, notices the start, tails
// output, enforces timeout and cancel, and ends the attempt from its exit record.
import fs from 'node:fs';
import type { PlanConfig } from '../config/types.ts';
import type { Outcome } from '../domain/transitions.ts';
import { selectAttemptById, setTimedOut } from '../store/attempts.ts';
import type { AttemptsTable } from '../store/schema.ts';
import { buildPlanEnv, ensureWorkspace } from '../runner/env.ts';
import { isAlive, signalGroup, type ProcessIdentity } from '../runner/identity.ts';
import { readExit, readProcess, readSupervisor, runDirPaths } from '../runner/rundir.ts';
import { resolveExecutable, spawnSupervisor } from '../runner/spawn.ts';
import type { Ctx } from './context.ts';
import { drainOutput, endAttempt, ingestOutput, recordStarted } from './attempt-writes.ts';
import { nowIso } from './ids.ts';

const TICK_MS = 100;

interface Watch {
  /** Taken over after a restart or from a dead owner: its outcome is reported `recovered`. */
  recovered: boolean;
  termSentAt: number | null;
  killSent: boolean;
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

export class Watcher {
  private watches = new Map<string, Watch>();
  /** Attempts accepted by this instance whose supervisor is being started: a cancel must wait for them. */
  private launching = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(private ctx: Ctx) {}

  start(): void {
    this.timer = setInterval(() => this.wake(), TICK_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
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

  adopt(id: string): void {
    if (!this.watches.has(id)) this.watches.set(id, { recovered: true, termSentAt: null, killSent: false });
  }

  /** Starts the supervisor of a freshly accepted attempt. The process outlives this server. */
  async launch(spec: LaunchSpec): Promise<void> {
    const { attempt, plan } = spec;
    try {
      const argv = attempt.kind === 'deploy' ? plan.deploy : plan.teardown;
      const dir = attempt.run_dir!;
      const workspace = ensureWorkspace(this.ctx.config.dataDir, attempt.deployment_id);
      fs.mkdirSync(dir, { recursive: true });
      const files = runDirPaths(dir);
      fs.writeFileSync(files.params, attempt.params, { mode: 0o600 });
      const env = buildPlanEnv(plan, {
        kind: attempt.kind as 'deploy' | 'teardown',
        params: attempt.params,
        paramsFile: files.params,
        deploymentId: attempt.deployment_id,
        deploymentName: spec.deploymentName,
        attemptId: attempt.id,
        attemptNumber: Number(attempt.number),
        workspace,
        eventsFile: files.events,
      });
      if (!resolveExecutable(argv[0], env.PATH, workspace)) {
        this.ctx.log.warn(
          { attempt: attempt.id, program: argv[0] },
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
            detail: `program not found or not executable: ${argv[0]}`,
          },
        );
        return;
      }
      const child = spawnSupervisor({ dir, argv, env, cwd: workspace });
      this.watches.set(attempt.id, { recovered: false, termSentAt: null, killSent: false });
      child.on('exit', () => this.wake());
      child.on('error', (err) => {
        this.ctx.log.error({ attempt: attempt.id, err: err.message }, 'supervisor failed to start');
        this.wake();
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
      this.wake();
    }
  }

  /** Runs a pass soon; passes never overlap. */
  wake(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Resolves after a full pass that started after this call. Passes stay serial: one at a time. */
  async settle(): Promise<void> {
    if (this.running) this.again = true;
    else this.wake();
    while (this.running) await this.running;
  }

  private async pass(): Promise<void> {
    if (!this.ctx.lease.live()) return; // lapsed: no signals, no writes until re-registered
    for (const id of [...this.watches.keys()]) {
      if (this.closed) return;
      try {
        await this.step(id);
        this.ctx.outage.ok();
      } catch (err) {
        // The attempt keeps running; its output and exit record wait on disk for the next pass.
        this.ctx.outage.failed('watch step', err, { attempt: id });
      }
    }
  }

  private async step(id: string): Promise<void> {
    const w = this.watches.get(id)!;
    let row = await selectAttemptById(this.ctx.store.db, id);
    if (
      !row ||
      row.owner !== this.ctx.instanceId ||
      row.owner_epoch !== this.ctx.lease.epoch ||
      !row.run_dir
    ) {
      this.watches.delete(id);
      return;
    }
    if (row.state !== 'queued' && row.state !== 'running') {
      this.watches.delete(id);
      this.stopStray(row);
      return;
    }
    const dir = row.run_dir;
    const proc = readProcess(dir);
    if (row.state === 'queued') {
      if (!proc) {
        if (!this.supervisorAlive(dir)) await this.lose(row, w, 'queued');
        return;
      }
      await recordStarted(this.ctx, id, proc, startedAt(dir));
      row = (await selectAttemptById(this.ctx.store.db, id))!;
    }
    if (!proc) {
      await this.lose(row, w, 'running');
      return;
    }
    await ingestOutput(this.ctx, id, false);
    // Liveness before the exit record: a supervisor that writes the record and exits between the
    // two reads is then still seen as alive, never as lost.
    const alive = isAlive(proc) || this.supervisorAlive(dir);
    const exit = readExit(dir);
    if (exit) {
      await drainOutput(this.ctx, id);
      const fresh = (await selectAttemptById(this.ctx.store.db, id))!;
      await endAttempt(
        this.ctx,
        id,
        {
          kind: 'exit',
          rc: exit.rc,
          cancelRequested: fresh.cancel_requested_at !== null,
          timedOut: fresh.timed_out_at !== null,
        },
        { rc: exit.rc, recovered: w.recovered, actor: 'runner', endedAt: new Date(exit.at).toISOString() },
      );
      this.watches.delete(id);
      return;
    }
    if (!alive) {
      await this.lose(row, w, 'running');
      return;
    }
    await this.enforceDeadlines(row, proc, w);
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
      }
      return; // with a plan identity, the next pass finishes it from the record
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
      if (!sup && Date.now() - Date.parse(row.queued_at) < this.ctx.config.startDeadlineMs) return;
      reason = 'start_interrupted';
    }
    await this.end(row, w, { kind: 'lost', reason });
  }

  private async end(row: AttemptsTable, w: Watch, outcome: Outcome, detail?: string): Promise<void> {
    await drainOutput(this.ctx, row.id);
    await endAttempt(this.ctx, row.id, outcome, {
      rc: null,
      recovered: w.recovered,
      actor: 'runner',
      detail,
    });
    this.watches.delete(row.id);
  }

  private async enforceDeadlines(row: AttemptsTable, proc: ProcessIdentity, w: Watch): Promise<void> {
    const now = Date.now();
    if (
      row.timed_out_at === null &&
      row.started_at &&
      now > Date.parse(row.started_at) + Number(row.timeout_ms)
    ) {
      await setTimedOut(this.ctx.store.db, row.id, nowIso());
      row = { ...row, timed_out_at: nowIso() };
      this.ctx.log.info({ attempt: row.id }, 'attempt timed out; terminating');
    }
    if (row.cancel_requested_at === null && row.timed_out_at === null) return;
    // signalGroup refuses until the plan's group exists (a few ms after its identity is written):
    // only a delivered signal counts, otherwise the next pass tries again.
    if (w.termSentAt === null) {
      if (signalGroup(proc, 'SIGTERM')) w.termSentAt = now;
    } else if (!w.killSent && now - w.termSentAt >= Number(row.cancel_grace_ms)) {
      if (signalGroup(proc, 'SIGKILL')) w.killSent = true;
    }
  }

  /** A process still alive for an attempt cancelled before start (the cancel won a race with the launch). */
  private stopStray(row: AttemptsTable): void {
    if (row.state !== 'cancelled') return;
    const proc = readProcess(row.run_dir!);
    if (proc && !readExit(row.run_dir!) && isAlive(proc)) signalGroup(proc, 'SIGKILL');
  }
}
