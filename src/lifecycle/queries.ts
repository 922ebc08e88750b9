// The reads the API serves: plans, deployments, attempts and their output, transitions, events, instances.
import type { Kysely } from 'kysely';
import { foldPhases, type Phase } from '../domain/phases.ts';
import { selectRunnerEvents } from '../store/phases.ts';
import { selectArchivedEvents } from '../store/archive.ts';
import { selectPrunedBefore } from '../store/retention.ts';
import { LifelineError } from '../domain/errors.ts';
import type {
  Attempt,
  Deployment,
  DeploymentState,
  InstanceInfo,
  LifelineEvent,
  Page,
  Transition,
} from '../domain/types.ts';
import { selectAttemptById, selectAttemptPage, selectAttemptsByIds } from '../store/attempts.ts';
import { selectWaiting } from '../store/gates.ts';
import { selectDeploymentById, selectDeploymentByRef, selectDeploymentPage } from '../store/deployments.ts';
import { selectDeploymentTransitions, selectEventPage } from '../store/events.ts';
import { readLog } from './logs.ts';
import { stackIdFor } from './stacks.ts';
import { selectInstancesAt } from '../store/instances.ts';
import { lastSeq } from '../store/stats.ts';
import type { Database, DeploymentsTable } from '../store/schema.ts';
import type { EventQuery, PlanInfo } from './api.ts';
import type { Ctx } from './context.ts';
import {
  groupWaiting,
  waitingOf,
  presentAttempt,
  presentDeployments,
  presentInstance,
  presentPlan,
  presentTransition,
} from './present.ts';
import {
  attemptCursor,
  checkDeploymentCursor,
  checkLimit,
  checkPosition,
  checkStateFilter,
  MAX_EVENTS_PAGE,
  MAX_PAGE,
} from './validate.ts';

/** A live deployment by id or name, or NOT_FOUND. */
export async function deploymentByRef(db: Kysely<Database>, ref: string): Promise<DeploymentsTable> {
  const row = await selectDeploymentByRef(db, ref);
  if (!row) throw new LifelineError('NOT_FOUND', `deployment ${ref} not found`);
  return row;
}

export function listPlans(ctx: Ctx): PlanInfo[] {
  return Object.values(ctx.config.plans).map(presentPlan);
}

export async function getDeployment(ctx: Ctx, ref: string): Promise<Deployment> {
  const row = await deploymentByRef(ctx.store.db, ref);
  return (await presentDeployments(ctx, ctx.store.db, [row]))[0];
}

export async function listDeployments(
  ctx: Ctx,
  query: {
    state?: DeploymentState;
    plan?: string;
    labels?: Record<string, string>;
    /** Only drifted deployments (true) or only the others (false); SPEC §14.2. */
    drift?: boolean;
    limit?: number;
    cursor?: string;
  },
): Promise<Page<Deployment>> {
  const limit = checkLimit(query.limit, MAX_PAGE, 50);
  checkStateFilter(query.state);
  checkDeploymentCursor(query.cursor);
  const rows = await selectDeploymentPage(ctx.store.db, {
    state: query.state,
    plan: query.plan,
    labels: query.labels,
    drift: query.drift,
    limit: limit + 1,
    before: query.cursor,
  });
  const page = rows.slice(0, limit);
  return {
    items: await presentDeployments(ctx, ctx.store.db, page),
    next_cursor: rows.length > limit ? page[page.length - 1].id : null,
  };
}

export async function listAttempts(
  ctx: Ctx,
  ref: string,
  query: { limit?: number; cursor?: string },
): Promise<Page<Attempt>> {
  const limit = checkLimit(query.limit, MAX_PAGE, 50);
  const before = attemptCursor(query.cursor);
  const dep = await deploymentByRef(ctx.store.db, ref);
  const rows = await selectAttemptPage(ctx.store.db, dep.id, limit + 1, before);
  const page = rows.slice(0, limit);
  const waiting = await waitingOf(ctx.store.db, page);
  return {
    items: page.map((r) => presentAttempt(ctx, r, dep.plan, waiting.get(r.id))),
    next_cursor: rows.length > limit ? String(page[page.length - 1].number) : null,
  };
}

/** `plan`: its deployment's plan, when the caller has that row in hand (a deployment's plan never changes). */
export async function getAttempt(ctx: Ctx, id: string, plan?: string): Promise<Attempt> {
  const row = await selectAttemptById(ctx.store.db, id);
  if (!row) throw new LifelineError('NOT_FOUND', `attempt ${id} not found`);
  plan ??= (await selectDeploymentById(ctx.store.db, row.deployment_id))?.plan ?? '';
  const waiting = await waitingOf(ctx.store.db, [row]);
  return presentAttempt(ctx, row, plan, waiting.get(row.id));
}

/** `GET /v1/attempts?waiting=true` (SPEC §13.4): every attempt a gate holds, oldest wait first. */
export async function listWaitingAttempts(ctx: Ctx, query: { gate?: string }): Promise<{ items: Attempt[] }> {
  const rows = await selectWaiting(ctx.store.db, 'all');
  const byAttempt = groupWaiting(rows);
  const ids = [...byAttempt.keys()];
  const attempts = await selectAttemptsByIds(ctx.store.db, ids);
  const planOf = new Map<string, string>();
  for (const depId of new Set(attempts.map((a) => a.deployment_id))) {
    const d = await selectDeploymentById(ctx.store.db, depId);
    if (d) planOf.set(d.id, d.plan);
  }
  const byId = new Map(attempts.map((a) => [a.id, a]));
  const items: Attempt[] = [];
  for (const id of ids) {
    const row = byId.get(id);
    const waiting = byAttempt.get(id)!;
    if (!row || (query.gate && !waiting.some((w) => w.gate === query.gate))) continue;
    items.push(presentAttempt(ctx, row, planOf.get(row.deployment_id) ?? '', waiting));
  }
  return { items };
}

/** The attempt's phases (SPEC §9.4), folded from its runner events; the last ends with the attempt. */
export async function listPhases(ctx: Ctx, id: string): Promise<{ items: Phase[] }> {
  const row = await selectAttemptById(ctx.store.db, id);
  if (!row) throw new LifelineError('NOT_FOUND', `attempt ${id} not found`);
  // Once pruned (SPEC §11), the runner events are in the attempt's archive; while a big attempt's events
  // are being deleted some are in both, so by seq, once each. The table first: a prune committing
  // between the two reads then leaves each event in one or the other.
  const live = await selectRunnerEvents(ctx.store.db, id);
  const archived = (await selectArchivedEvents(ctx.store.db, id)).flatMap((e) =>
    e.type === 'runner_event' && 'data' in e ? [e] : [],
  );
  const bySeq = new Map([...archived, ...live].map((e) => [e.seq, e]));
  const events = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  return { items: foldPhases(events, row.ended_at) };
}

export async function readAttemptLog(
  ctx: Ctx,
  id: string,
  offset = 0,
  opts: { limit?: number; tail?: number } = {},
): Promise<{ text: string; next_offset: number }> {
  checkPosition(offset, 'offset');
  const row = await selectAttemptById(ctx.store.db, id);
  if (!row) throw new LifelineError('NOT_FOUND', `attempt ${id} not found`);
  return readLog(ctx, row, { offset, ...opts });
}

export async function listTransitions(ctx: Ctx, ref: string): Promise<{ items: Transition[] }> {
  const dep = await deploymentByRef(ctx.store.db, ref);
  const events = await selectDeploymentTransitions(ctx.store.db, dep.id);
  return { items: events.map(presentTransition) };
}

/** Resolves a deployment filter to its id; deleted deployments stay readable by id. */
export async function deploymentIdFor(ctx: Ctx, ref: string): Promise<string> {
  const live = await selectDeploymentByRef(ctx.store.db, ref);
  if (live) return live.id;
  const gone = await selectDeploymentById(ctx.store.db, ref);
  if (gone) return gone.id;
  throw new LifelineError('NOT_FOUND', `deployment ${ref} not found`);
}

export async function listEvents(
  ctx: Ctx,
  query: EventQuery,
): Promise<{ items: LifelineEvent[]; next_after: number; logs_pruned_before: number | null }> {
  const after = checkPosition(query.after ?? 0, 'after');
  const limit = checkLimit(query.limit, MAX_EVENTS_PAGE, 100);
  const deploymentId = query.deployment ? await deploymentIdFor(ctx, query.deployment) : undefined;
  const stackId = query.stack ? await stackIdFor(ctx, query.stack) : undefined;
  const page = await selectEventPage(ctx.store.db, {
    after,
    limit,
    deploymentId,
    stackId,
    types: query.types,
  });
  // Read after the page: whatever a concurrent prune took out of the page lies below what this says.
  // A stream does not send it: one statement less per commit it follows (issue 18).
  if (query.noPrunedMark) return { ...page, logs_pruned_before: null };
  return { ...page, logs_pruned_before: await selectPrunedBefore(ctx.store.db) };
}

/** A cursor past the last seq is refused, as redelivery refuses one (webhooks/service.ts). */
export async function checkEventCursor(ctx: Ctx, after: number, field: string): Promise<void> {
  if (after <= 0) return;
  const last = await lastSeq(ctx.store.db);
  if (after > last) {
    throw new LifelineError('VALIDATION', `${field} ${after} is past the last event (seq ${last})`, [
      { field, reason: `must be at most ${last}, the last seq; read from there (or from 0)` },
    ]);
  }
}

export async function listInstances(ctx: Ctx): Promise<InstanceInfo[]> {
  // Alive is judged on the database's clock, as peers judge it (src/store/instances.ts).
  const { rows, nowMs } = await selectInstancesAt(ctx.store.db, ctx.store.dialect);
  const horizon = nowMs - ctx.config.leaseTtlMs;
  return rows.map((r) => presentInstance(r, horizon));
}
