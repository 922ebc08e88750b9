// The cancel command: ends a queued attempt nobody is starting, or asks the runner to stop it.
import type { Transaction } from 'kysely';
import { LifelineError } from '../../domain/errors.ts';
import { decideCancel } from '../../domain/transitions.ts';
import type { Actor, Attempt, AttemptState, LifelineEvent } from '../../domain/types.ts';
import { selectAttemptById } from '../../store/attempts.ts';
import { selectInstancesAt } from '../../store/instances.ts';
import { notifyAttempt } from '../../store/listen.ts';
import type { AttemptsTable, Database, InstancesTable } from '../../store/schema.ts';
import type { WriteOptions } from '../api.ts';
import { writeCancelRequest, writeEnd } from '../attempt-writes.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { deploymentByRef, getAttempt } from '../queries.ts';
import { transactCommand } from '../tx.ts';
import type { Watcher } from '../watcher.ts';
import { applyTransition, NO_RETRY } from '../../store/transition.ts';
import { startingUntil } from '../../domain/start-deadline.ts';
import { anyAlive, readIdentities } from '../../runner/rundir.ts';
import { asRead, checkVersion } from './guards.ts';

export async function cancel(
  ctx: Ctx,
  watcher: Watcher,
  ref: string,
  actor: Actor,
  w?: WriteOptions,
): Promise<Attempt> {
  const id = await transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const dep = await deploymentByRef(trx, ref);
    checkVersion(dep, w);
    const att = dep.current_attempt_id ? await selectAttemptById(trx, dep.current_attempt_id) : undefined;
    // A gate holds it (SPEC §13): nobody starts it until the gate opens, so it is cancelled at once;
    // the end's compare-and-set on the flag makes an opening that commits first win.
    const waiting = att?.state === 'queued' && Number(att.waiting ?? 0) === 1;
    const started = att
      ? att.state === 'running' || (!waiting && (await someoneStarts(ctx, watcher, trx, att)))
      : false;
    const supervised = att?.state === 'unknown' && (await supervisedByLive(ctx, watcher, trx, att));
    const d = decideCancel(
      att
        ? { state: att.state as AttemptState, cancelRequested: att.cancel_requested_at !== null, supervised }
        : null,
      started,
      dep.retry_attempt_id != null,
    );
    if (!d.ok) throw new LifelineError(d.refusal.code, d.refusal.detail);
    const at = nowIso();
    if (d.action === 'cancel_retry') {
      // The retry waits on the failed attempt, which is what the answer shows (it stays failed).
      const events = await applyTransition(trx, {
        at,
        actor: actor.name,
        deployment: { ...asRead(dep), set: NO_RETRY, expectRetryOf: dep.retry_attempt_id! },
        eventsAfter: [
          {
            type: 'retry_cancelled',
            deployment_id: dep.id,
            attempt_id: dep.retry_attempt_id!,
            data: {
              number: Number(dep.retry_number),
              of: Number(dep.retry_of),
              at: dep.retry_at,
              actor: actor.name,
            },
          },
        ],
      });
      return { result: dep.retry_attempt_id!, events };
    }
    if (d.action === 'cancel_now') {
      const end = await writeEnd(
        trx,
        att!.id,
        { kind: 'cancelled_before_start' },
        {
          rc: null,
          recovered: false,
          actor: actor.name,
          cancelRequestedAt: at,
          expectWaiting: waiting ? 1 : 0,
        },
      );
      if (!end.ok) throw new LifelineError(end.refusal.code, end.refusal.detail);
      return { result: att!.id, events: end.events };
    }
    let events: LifelineEvent[] = [];
    if (d.action === 'request') {
      events = await writeCancelRequest(trx, att!, actor.name, at);
      // Its owner may be another instance: tell it now rather than at its next safety pass.
      if (ctx.store.dialect === 'postgres') await notifyAttempt(trx, att!.id);
    }
    return { result: att!.id, events };
  });
  watcher.wake(id);
  return getAttempt(ctx, id);
}

/** Does a live instance hold this `unknown` attempt, its process still alive where it can see it? */
async function supervisedByLive(
  ctx: Ctx,
  watcher: Watcher,
  trx: Transaction<Database>,
  att: AttemptsTable,
): Promise<boolean> {
  if (att.owner === ctx.instanceId) return watcher.isWatched(att.id);
  const owner = await liveInstance(ctx, trx, att.owner);
  return owner !== undefined && Number(owner.epoch) === Number(att.owner_epoch);
}

/** The instance `id` if its lease is held (judged on the database's clock). */
async function liveInstance(
  ctx: Ctx,
  trx: Transaction<Database>,
  id: string | null,
): Promise<InstancesTable | undefined> {
  const { rows, nowMs } = await selectInstancesAt(trx, ctx.store.dialect);
  const owner = rows.find((i) => i.id === id);
  return owner && Date.parse(owner.last_seen_at) >= nowMs - ctx.config.leaseTtlMs ? owner : undefined;
}

/**
 * Could this queued attempt still start (or has it started)? Its owner's launch may already be with a
 * runner, which outlives the owner: an owner that is gone says nothing about the plan. So, as recovery
 * judges it (one start-deadline rule): it may start while its owner holds its lease, while a supervisor
 * or plan of it is alive where this instance can see, and until the start deadline after the later of
 * its queueing and its owner's last heartbeat, on the database's clock. Only past all of that is it
 * cancelled at once; before, the cancel is requested, and whoever supervises it stops it.
 */
async function someoneStarts(
  ctx: Ctx,
  watcher: Watcher,
  trx: Transaction<Database>,
  att: AttemptsTable,
): Promise<boolean> {
  if (att.state !== 'queued') return false;
  if (watcher.isWatched(att.id)) return true;
  if (att.run_dir === null) return false; // never handed to a launcher: there is nowhere to start it
  const { rows, nowMs } = await selectInstancesAt(trx, ctx.store.dialect);
  const owner = rows.find((i) => i.id === att.owner);
  const ownerSeen = owner ? Date.parse(owner.last_seen_at) : 0;
  if (att.owner !== ctx.instanceId && ownerSeen >= nowMs - ctx.config.leaseTtlMs) return true;
  const evidence = {
    now: nowMs,
    queuedAt: Date.parse(att.queued_at),
    progress: att.owner === ctx.instanceId ? [] : [ownerSeen],
    starting: att.run_dir !== null && startedHere(att.run_dir),
  };
  return nowMs < startingUntil(evidence, ctx.config.startDeadlineMs);
}

/** A supervisor or the plan of this run dir is alive on this machine. */
function startedHere(dir: string): boolean {
  return anyAlive(readIdentities(dir));
}
