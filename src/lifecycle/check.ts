// Runs a plan's check (no shell) and records its verdict; on an `unknown` deployment the verdict
// resolves the state in the same transaction as the check_result event.
import type { PlanConfig } from '../config/types.ts';
import { checkVerdict, decideCheckResult } from '../domain/transitions.ts';
import type { Actor, DeploymentState, NewEvent } from '../domain/types.ts';
import { findPlan } from '../config/load.ts';
import { releaseClaim } from '../store/drift.ts';
import { recordReadyVerdict } from './drift-verdict.ts';
import { mayAct } from './watch/may-act.ts';
import { selectDeploymentById } from '../store/deployments.ts';
import type { DeploymentsTable } from '../store/schema.ts';
import { insertEvents } from '../store/events.ts';
import { applyTransition } from '../store/transition.ts';
import { outputsOnMove } from './outputs.ts';
import { buildPlanEnv, ensureWorkspace } from '../runner/env.ts';
import { withDeadline } from '../runner/check-process.ts';
import { CheckStopped, type CheckRequest } from '../runner/launcher-api.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { transact } from './tx.ts';
import { releaseResolved } from './gates/release.ts';

/** Runs a check through the instance's check starter (the runner: no fork of this process). */
function runArgv(ctx: Ctx, req: CheckRequest, signal?: AbortSignal): Promise<number | null> {
  if (signal?.aborted) return Promise.resolve(null);
  const check = ctx.checks.startCheck(req);
  signal?.addEventListener('abort', check.kill, { once: true });
  return check.done.finally(() => signal?.removeEventListener('abort', check.kill));
}

export interface CheckRun {
  /** The deadline (a scheduled check: the plan's check_timeout). Default: the plan's timeout. */
  timeoutMs?: number;
  /** Kills the check (the engine is closing); nothing is recorded then. */
  signal?: AbortSignal;
  /** A scheduled check's claim (SPEC §14.2): its verdict is recorded only while the claim holds. */
  claim?: { owner: string; epoch: number; version: number; due: string };
}

/** A check that ran, and what its verdict is recorded against. */
export interface CheckEnded {
  /** The deployment as read when the check began. */
  dep: DeploymentsTable;
  /** Its state and version then: a verdict counts only for that stay. */
  began: { state: string; version: number };
  rc: number | null;
  actor: Actor;
  claim?: CheckRun['claim'];
}

/**
 * Runs the plan's check on `dep` and records its verdict: on an `unknown` deployment it resolves the
 * state; on a `ready` one it says whether the deployment drifted (drift-verdict.ts). Either only while
 * the deployment is still at the version the check began on: a verdict that raced an attempt (or any
 * other write) is appended as a check_result with `stale: true` and changes nothing.
 */
export async function runCheck(
  ctx: Ctx,
  dep: DeploymentsTable,
  plan: PlanConfig,
  actor: Actor,
  opts: CheckRun = {},
): Promise<void> {
  const ended = await runCheckProcess(ctx, dep, plan, actor, opts);
  if (ended) await recordCheck(ctx, ended);
}

/**
 * Runs the plan's check process on `dep`; null when it was killed by `opts.signal` or stopped with the
 * engine (nothing to record).
 */
export async function runCheckProcess(
  ctx: Ctx,
  dep: DeploymentsTable,
  plan: PlanConfig,
  actor: Actor,
  opts: CheckRun = {},
): Promise<CheckEnded | null> {
  const began = { state: dep.state, version: opts.claim?.version ?? Number(dep.version) };
  const workspace = ensureWorkspace(ctx.config.dataDir, dep.id);
  const env = buildPlanEnv(plan, {
    kind: 'check',
    params: dep.params,
    deploymentId: dep.id,
    deploymentName: dep.name,
    workspace,
  });
  const req = { argv: plan.check!, env, cwd: workspace, timeoutMs: opts.timeoutMs ?? plan.timeoutMs };
  let rc: number | null;
  try {
    rc = await runArgv(ctx, req, opts.signal);
  } catch (err) {
    if (err instanceof CheckStopped) return null; // the engine is stopping: nothing to record
    throw err;
  }
  if (opts.signal?.aborted) return null;
  return { dep, began, rc, actor, ...(opts.claim ? { claim: opts.claim } : {}) };
}

/**
 * The check_result a verdict appends on the deployment as it is now, and whether the verdict counts
 * on a `ready` deployment (not stale); null when nothing is to be recorded (the deployment is gone, or
 * a scheduled check no longer holds its claim or this instance its lease: the fence of docs/scaling.md).
 */
export function checkResultOf(
  ctx: Ctx,
  ended: CheckEnded,
  fresh: DeploymentsTable | undefined,
): { result: NewEvent; ready: boolean } | null {
  const { claim, began, rc, actor } = ended;
  if (!fresh || fresh.deleted_at) return null;
  if (claim && (fresh.check_owner !== ctx.instanceId || Number(fresh.check_epoch) !== claim.epoch))
    return null;
  if (claim && !mayAct(ctx)) return null;
  const stale = fresh.state !== began.state || Number(fresh.version) !== began.version;
  const data: Record<string, unknown> = { rc, verdict: checkVerdict(rc), actor: actor.name };
  if (claim) data.due = claim.due; // the slot it was for: each is checked once
  if (stale) data.stale = true;
  const result: NewEvent = { type: 'check_result', deployment_id: fresh.id, attempt_id: null, data };
  return { result, ready: !stale && fresh.state === 'ready' };
}

/** Records one check's verdict in a transaction of its own. */
export async function recordCheck(ctx: Ctx, ended: CheckEnded): Promise<void> {
  const { claim, rc, actor } = ended;
  const verdict = checkVerdict(rc);
  await transact(ctx.store, ctx.bus, async (trx) => {
    const nothing = { result: undefined, events: [] };
    const fresh = await selectDeploymentById(trx, ended.dep.id);
    const r = checkResultOf(ctx, ended, fresh);
    if (!r || !fresh) return nothing;
    const at = nowIso();
    if (r.ready) {
      const f = findPlan(ctx.config, fresh.plan);
      const v = { rc, verdict, actor: actor.name, result: r.result };
      const events = await recordReadyVerdict(ctx, trx, fresh, f, v, at, claim);
      return { result: undefined, events: await insertEvents(trx, events, at) };
    }
    const stale = r.result.data.stale === true;
    if (claim) await releaseClaim(trx, fresh.id, claim.owner, claim.epoch);
    const writes = stale ? {} : decideCheckResult(fresh.state as DeploymentState, verdict);
    const outputs = outputsOnMove(fresh, writes.deployment?.to);
    if (writes.deployment) await releaseResolved(trx, fresh);
    const events = await applyTransition(trx, {
      at,
      actor: actor.name,
      deployment: {
        id: fresh.id,
        expectState: fresh.state,
        expectVersion: Number(fresh.version),
        change: writes.deployment,
        ...(outputs.set ? { set: outputs.set } : {}),
      },
      eventsAfter: outputs.events,
      eventsBefore: [r.result],
    });
    return { result: undefined, events };
  });
}
