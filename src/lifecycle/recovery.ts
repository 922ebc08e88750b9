// Reconciliation (SPEC §5), at start-up and every reap interval. Idempotent: every end goes through
// the same compare-and-set write, so a second pass finds nothing left to do. The work of a pass does not
// grow with history: `unknown` attempts an operator no longer waits on (their deployment was resolved or
// moved on) are looked at a page per pass, in turn, so a late exit record is still found, in time.
import { startingUntil } from '../domain/start-deadline.ts';
import {
  claimAttempt,
  selectCurrentUnknown,
  selectUnheldInStates,
  selectUnknownPage,
} from '../store/attempts.ts';
import { selectInstancesAt } from '../store/instances.ts';
import type { AttemptsTable } from '../store/schema.ts';
import { bootId } from '../runner/identity.ts';
import { anyAlive, readIdentities, readSupervisor } from '../runner/rundir.ts';
import { endAttempt, groupLeft, isStopped, settleLate } from './attempt-writes.ts';
import type { Ctx } from './context.ts';
import type { Watcher } from './watcher.ts';
import { mayAct } from './watch/may-act.ts';

/** The run dir of this attempt is on this machine (same boot), so its files tell the truth. */
function tracedHere(row: AttemptsTable): boolean {
  if (!row.run_dir) return false;
  const sup = readSupervisor(row.run_dir);
  return sup !== null && sup.boot === bootId();
}

/** Older `unknown` attempts looked at per pass (the current ones of `unknown` deployments: all). */
export const UNKNOWN_PAGE = 20;

/** What reconcile keeps between passes: where the page of older unknown attempts goes on. */
export class ReconcileCursor {
  after = '';
  constructor(
    /** Told each attempt a pass looks at (tests: the work of a pass). */
    readonly onLook?: (attemptId: string) => void,
  ) {}
}

/** The `unknown` attempts this pass looks at: the current ones, and the next page of the others. */
async function unknownToLook(ctx: Ctx, cursor: ReconcileCursor): Promise<AttemptsTable[]> {
  const rows = await selectCurrentUnknown(ctx.store.db);
  const seen = new Set(rows.map((r) => r.id));
  let page = await selectUnknownPage(ctx.store.db, cursor.after, UNKNOWN_PAGE);
  if (page.length < UNKNOWN_PAGE && cursor.after !== '') {
    // The end: wrap around to the first ones.
    const more = await selectUnknownPage(ctx.store.db, '', UNKNOWN_PAGE - page.length);
    page = [...page, ...more.filter((r) => r.id <= cursor.after)];
  }
  cursor.after = page.length === 0 ? '' : page[page.length - 1].id;
  for (const r of page) if (!seen.has(r.id)) rows.push(r);
  return rows;
}

export async function reconcile(
  ctx: Ctx,
  watcher: Watcher,
  cursor: ReconcileCursor = new ReconcileCursor(),
): Promise<void> {
  // Without a held lease this instance may already count as dead to its peers: it acts on nothing
  // until the heartbeat has re-registered it.
  if (!mayAct(ctx)) return;
  // Leases are judged on the database's clock only: `now` and every last_seen_at come from it.
  const { rows: instances, nowMs: now } = await selectInstancesAt(ctx.store.db, ctx.store.dialect);
  const lastSeen = new Map(instances.map((i) => [i.id, Date.parse(i.last_seen_at)] as const));
  const rows = [
    ...(await selectUnheldInStates(ctx.store.db, ['queued', 'running'])),
    ...(await unknownToLook(ctx, cursor)),
  ];
  for (const row of rows) {
    cursor.onLook?.(row.id);
    try {
      if (row.state === 'unknown') await reconcileUnknown(ctx, watcher, row, lastSeen, now);
      else await reconcileActive(ctx, watcher, row, lastSeen, now);
    } catch (err) {
      ctx.log.error({ attempt: row.id, err: (err as Error).message }, 'reconcile failed for attempt');
    }
  }
  await watcher.settle();
}

async function reconcileActive(
  ctx: Ctx,
  watcher: Watcher,
  row: AttemptsTable,
  lastSeen: Map<string, number>,
  now: number,
): Promise<void> {
  // A gate holds it (SPEC §13): nobody is starting it, so nothing is lost; whoever opens it launches it.
  if (Number(row.waiting ?? 0) === 1) return;
  const held = { owner: row.owner, epoch: Number(row.owner_epoch ?? 0) };
  if (row.owner === ctx.instanceId) {
    // Ours from before a restart or a lapsed lease: re-claimed under the current epoch (which fences
    // the old registration), then the watcher adopts, finishes or loses it.
    if (held.epoch === ctx.lease.epoch) {
      if (!watcher.isWatched(row.id)) watcher.adopt(row.id);
    } else if (await claimAttempt(ctx.store.db, row.id, held, ctx.lease.fence())) {
      watcher.adopt(row.id);
    }
    return;
  }
  if (watcher.isWatched(row.id)) return;
  const ownerSeen = row.owner ? lastSeen.get(row.owner) : undefined;
  if (ownerSeen !== undefined && ownerSeen >= now - ctx.config.leaseTtlMs) return; // its owner is alive
  if (tracedHere(row)) {
    if (await claimAttempt(ctx.store.db, row.id, held, ctx.lease.fence())) watcher.adopt(row.id);
    return;
  }
  if (row.state === 'queued') {
    // Its owner is gone: it counts as starting from the later of its queueing and the owner's last
    // heartbeat (on the database's clock), by the same rule the watcher applies to its own.
    const evidence = {
      now,
      // The start deadline counts from the moment every gate opened (SPEC §13).
      queuedAt: Date.parse(row.opened_at ?? row.queued_at),
      progress: [ownerSeen ?? 0],
      starting: false,
    };
    if (now < startingUntil(evidence, ctx.config.startDeadlineMs)) return;
    // Judged never to start: a cancel asked meanwhile (commands/cancel.ts waits for this judgement
    // rather than cancel what a runner may still start) is then done.
    await endAttempt(
      ctx,
      row.id,
      row.cancel_requested_at !== null
        ? { kind: 'cancelled_before_start' }
        : { kind: 'lost', reason: 'start_interrupted' },
      { rc: null, recovered: true, actor: 'recovery', fence: held },
    );
    return;
  }
  await endAttempt(
    ctx,
    row.id,
    { kind: 'lost', reason: 'runner_lost' },
    { rc: null, recovered: true, actor: 'recovery', fence: held },
  );
}

/**
 * An `unknown` attempt: its exit record turned up (correct it late), or its process still lives where
 * we can see it (SPEC §5, issue 7 defect 5): supervise it again, so timeout and cancel still apply and
 * its exit corrects the state. Claimed like an orphan when its owner is not a live holder of it.
 */
async function reconcileUnknown(
  ctx: Ctx,
  watcher: Watcher,
  row: AttemptsTable,
  lastSeen: Map<string, number>,
  now: number,
): Promise<void> {
  if (await settleLate(ctx, row)) return;
  // Alive here: its plan or supervisor, or what is left of a stopped one's group (settleLate waits for
  // that to be stopped, which is the supervising watcher's work).
  const lives = (dir: string) => processLives(dir) || (isStopped(row) && groupLeft(dir).length > 0);
  if (watcher.isWatched(row.id) || !tracedHere(row) || !lives(row.run_dir!)) return;
  const held = { owner: row.owner, epoch: Number(row.owner_epoch ?? 0) };
  const mine = row.owner === ctx.instanceId;
  if (mine && held.epoch === ctx.lease.epoch) {
    watcher.adopt(row.id);
    return;
  }
  const ownerSeen = row.owner ? lastSeen.get(row.owner) : undefined;
  if (!mine && ownerSeen !== undefined && ownerSeen >= now - ctx.config.leaseTtlMs) return; // it supervises
  if (await claimAttempt(ctx.store.db, row.id, held, ctx.lease.fence())) watcher.adopt(row.id);
}

function processLives(dir: string): boolean {
  return anyAlive(readIdentities(dir));
}
