// Advances stack runs (SPEC §12.4): after a unit's attempt ends (this instance's commits), when a run
// starts or is cancelled, and in the reconcile pass for every active run (whatever instance ended what).
// Each step re-reads the run and its units in a transaction and asks the planner; a launch is the unit's
// ordinary attempt accept with a compare-and-set on the run's version in the same transaction, so of
// two instances (or a crash and its restart) that decide one launch, exactly one commits it.
import { LifelineError } from '../../domain/errors.ts';
import { runMove, withLaunched, withRefused, type Launch } from '../../domain/stack-run.ts';
import { decideDeploy, decideTeardown } from '../../domain/transitions.ts';
import type { Actor, DeploymentState, LifelineEvent, NewEvent } from '../../domain/types.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import { insertEvents } from '../../store/events.ts';
import { releaseStackRun, runTransitionEvent, selectActiveRunIds, updateRun } from '../../store/runs.ts';
import { stackStateEvents } from '../../store/stacks.ts';
import { startAttempt } from '../commands/attempt.ts';
import { cancel } from '../commands/cancel.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { transact } from '../tx.ts';
import type { Watcher } from '../watcher.ts';
import { mayAct } from '../watch/may-act.ts';
import { checkParams } from '../validate.ts';
import { runCrashPoint } from './crash-points.ts';
import { readRunWorld, runOptions } from './world.ts';

/** The run moved on (another instance launched it, or the run ended) before this launch committed. */
class NotLaunchable extends LifelineError {
  constructor() {
    super('INVALID_TRANSITION', 'the unit is no longer to be launched by this run');
  }
}

/**
 * Refusals of a unit's accept that will not pass by themselves: the step fails, saying why. Not
 * INVALID_TRANSITION: that is also a write that kept losing its race (the next pass tries again).
 */
const REFUSED = new Set([
  'VALIDATION',
  'PLAN_NOT_FOUND',
  'NOT_FOUND',
  'ATTEMPT_IN_PROGRESS',
  'DEPLOYMENT_UNKNOWN_STATE',
  'ALREADY_TORN_DOWN',
  'FORBIDDEN',
]);

type Next =
  | { kind: 'done' }
  | { kind: 'wrote' }
  | { kind: 'wait'; stopping: string[] }
  | { kind: 'launch'; launch: Launch; runKind: string; actor: string; force: boolean };

/** Steps of one advance before it yields (a run of 1,000 units launches in many of them). */
const STEPS_PER_TURN = 200;

export class RunAdvancer {
  private readonly running = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  private closed = false;

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
  ) {}

  /** A commit of this instance: a unit of a stack changed, or a run was asked to move. */
  noteEvents(events: LifelineEvent[]): void {
    const stacks = new Set<string>();
    const runs = new Set<string>();
    for (const e of events) {
      if (e.type === 'state_transition' && e.data.entity === 'run') {
        const to = e.data.to;
        if (to === 'queued' || to === 'running') runs.add(String(e.data.id));
      } else if (e.type === 'cancel_requested' && e.data.entity === 'run') runs.add(String(e.data.id));
      else if (e.stack_id && (e.type === 'attempt_end' || e.type === 'state_transition')) {
        if (e.data.entity !== 'stack' && e.data.entity !== 'run') stacks.add(e.stack_id);
      }
    }
    for (const id of runs) this.kick(id);
    for (const s of stacks) void this.kickStack(s);
  }

  /** Advances one run soon; concurrent kicks of one run share its pass and ask for one more. */
  kick(runId: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    const busy = this.running.get(runId);
    if (busy) {
      this.again.add(runId);
      return busy;
    }
    const p = this.advance(runId)
      .catch((err) => this.ctx.outage.failed('stack run', err))
      .finally(() => {
        this.running.delete(runId);
        if (this.again.delete(runId)) void this.kick(runId);
      });
    this.running.set(runId, p);
    return p;
  }

  private async kickStack(stackId: string): Promise<void> {
    try {
      const row = await this.ctx.store.db
        .selectFrom('stacks')
        .select('active_run_id')
        .where('id', '=', stackId)
        .executeTakeFirst();
      if (row?.active_run_id) await this.kick(row.active_run_id);
    } catch (err) {
      this.ctx.outage.failed('stack run', err);
    }
  }

  /** The reconcile pass: every active run, whoever started it. */
  async pass(): Promise<void> {
    if (this.closed || !mayAct(this.ctx)) return;
    const ids = await selectActiveRunIds(this.ctx.store.db);
    await Promise.all(ids.map((id) => this.kick(id)));
  }

  /** Resolves once the runs being advanced now are done with it (tests). */
  async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.settle();
  }

  private async advance(runId: string): Promise<void> {
    for (let i = 0; i < STEPS_PER_TURN; i++) {
      if (this.closed || !mayAct(this.ctx)) return;
      if (!(await this.step(runId))) return;
    }
    this.again.add(runId);
  }

  /** One move of a run: a launch, a refusal recorded, or its steps/end written. True: look again. */
  private async step(runId: string): Promise<boolean> {
    const next = await transact<Next>(this.ctx.store, this.ctx.bus, async (trx) => {
      const { run, view, advance } = await readRunWorld(trx, runId);
      if (view.state !== 'queued' && view.state !== 'running') {
        return { result: { kind: 'done' as const }, events: [] };
      }
      if (advance.launch.length > 0) {
        const launch = advance.launch[0];
        const force = runOptions(run).force === true;
        return { result: { kind: 'launch', launch, runKind: run.kind, actor: run.actor, force }, events: [] };
      }
      const stopping = view.cancelRequested
        ? view.steps.filter((s) => s.step === 'launched' && s.attempt_id).map((s) => s.attempt_id!)
        : [];
      if (!advance.changed && !advance.change) {
        return { result: { kind: 'wait' as const, stopping }, events: [] };
      }
      const at = nowIso();
      const change = advance.change;
      const ends = change !== null && change.trigger !== 'started';
      const version = await updateRun(
        trx,
        run.id,
        Number(run.version),
        {
          steps: JSON.stringify(advance.steps),
          ...(change ? { state: change.to } : {}),
          ...(ends ? { reason: change.reason, ended_at: at } : {}),
        },
        at,
      );
      const out: NewEvent[] = [];
      if (change) out.push(runTransitionEvent(run, change, run.actor, version));
      if (ends) {
        await releaseStackRun(trx, run.stack_id, run.id, at);
        out.push(
          ...(await stackStateEvents(trx, run.stack_id, {
            at,
            actor: run.actor,
            trigger: 'run_ended',
            reason: run.id,
          })),
        );
        runCrashPoint('run_end_before_commit');
      }
      const events = await insertEvents(trx, out, at);
      return { result: { kind: ends ? ('done' as const) : ('wrote' as const) }, events };
    });
    if (next.kind === 'done') {
      runCrashPoint('run_end_after_commit');
      return false;
    }
    if (next.kind === 'wait') {
      await this.stopLaunched(next.stopping, runId);
      return false;
    }
    if (next.kind === 'wrote') return true;
    await this.launch(runId, next);
    return true;
  }

  /** A cancelled run's launched units: the ordinary, proven cancel of each (asked once). */
  private async stopLaunched(attemptIds: string[], runId: string): Promise<void> {
    for (const id of attemptIds) {
      const att = await selectAttemptById(this.ctx.store.db, id);
      if (!att || att.cancel_requested_at !== null || !['queued', 'running', 'unknown'].includes(att.state))
        continue;
      try {
        const run = await this.ctx.store.db
          .selectFrom('runs')
          .select('actor')
          .where('id', '=', runId)
          .executeTakeFirst();
        await cancel(this.ctx, this.watcher, att.deployment_id, {
          name: run?.actor ?? 'system',
          role: 'operator',
        });
      } catch (err) {
        if (!(err instanceof LifelineError)) throw err; // ended meanwhile: nothing to stop
      }
    }
  }

  /** Launches one unit: its ordinary attempt, accepted with the run's compare-and-set. */
  private async launch(runId: string, next: Extract<Next, { kind: 'launch' }>): Promise<void> {
    const l = next.launch;
    const actor: Actor = { name: next.actor, role: next.force ? 'admin' : 'operator' };
    try {
      await startAttempt(
        this.ctx,
        this.watcher,
        next.runKind === 'deploy' ? 'deploy' : 'teardown',
        {
          ref: l.deploymentId,
          actor,
          w: undefined,
          force: l.force,
          runId,
          onCommitted: () => runCrashPoint('run_launch_after_commit'),
        },
        async (dep, plan, trx, attemptId) => {
          const { run, view, advance } = await readRunWorld(trx, runId);
          const now = advance.launch.find((x) => x.deploymentId === dep.id);
          if (!now || (view.state !== 'queued' && view.state !== 'running')) throw new NotLaunchable();
          const state = dep.state as DeploymentState;
          const caller = { isAdmin: now.force };
          const params = JSON.parse(dep.params) as Record<string, unknown>;
          let decision;
          if (view.kind === 'deploy') {
            checkParams(plan, params);
            decision = decideDeploy(state, now.force, caller);
          } else {
            decision = decideTeardown(state, { name: dep.name, confirm: dep.name, force: now.force }, caller);
          }
          if (!decision.ok) return { decision, params };
          const at = nowIso();
          const version = await updateRun(
            trx,
            run.id,
            Number(run.version),
            {
              steps: JSON.stringify(withLaunched(advance.steps, dep.id, attemptId)),
              ...(advance.change ? { state: advance.change.to } : {}),
            },
            at,
          );
          const eventsAfter = advance.change
            ? [runTransitionEvent(run, advance.change, run.actor, version)]
            : [];
          runCrashPoint('run_launch_before_commit');
          return { decision, params, reason: `stack run ${run.id}`, eventsAfter };
        },
      );
      runCrashPoint('run_launch_after_start');
    } catch (err) {
      if (err instanceof NotLaunchable) return;
      if (err instanceof LifelineError && REFUSED.has(err.code)) {
        await this.refuse(runId, l.deploymentId, `${err.code}: ${err.message}`);
        return;
      }
      throw err;
    }
  }

  /** The unit's accept was refused: its step fails with why (if the run still meant to launch it). */
  private async refuse(runId: string, deploymentId: string, detail: string): Promise<void> {
    await transact(this.ctx.store, this.ctx.bus, async (trx) => {
      const { run, view, advance } = await readRunWorld(trx, runId);
      const still = advance.launch.some((x) => x.deploymentId === deploymentId);
      if (!still || (view.state !== 'queued' && view.state !== 'running'))
        return { result: undefined, events: [] };
      const at = nowIso();
      const change = view.state === 'queued' ? runMove('started', 'queued', 'running', null) : null;
      const version = await updateRun(
        trx,
        run.id,
        Number(run.version),
        {
          steps: JSON.stringify(withRefused(advance.steps, deploymentId, detail)),
          ...(change ? { state: change.to } : {}),
        },
        at,
      );
      const events = change
        ? await insertEvents(trx, [runTransitionEvent(run, change, run.actor, version)], at)
        : [];
      return { result: undefined, events };
    });
    this.ctx.log.warn({ run: runId, deployment: deploymentId, detail }, 'stack run: unit launch refused');
  }
}
