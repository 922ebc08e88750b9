// The run commands and reads of the API: start (deploy / teardown), cancel, list, get.
import { LifelineError } from '../../domain/errors.ts';
import { decideRunCancel, type Run, type RunKind, type RunState } from '../../domain/stack-run.ts';
import type { Actor, Page } from '../../domain/types.ts';
import { insertEvents } from '../../store/events.ts';
import { selectRunById, selectRunPage, updateRun } from '../../store/runs.ts';
import type { RunsTable } from '../../store/schema.ts';
import { selectStackById, selectStackByRef } from '../../store/stacks.ts';
import type { WriteOptions } from '../api.ts';
import type { Ctx } from '../context.ts';
import { nowIso } from '../ids.ts';
import { transactCommand } from '../tx.ts';
import type { RunAdvancer } from './advance.ts';
import { presentRuns } from './present.ts';
import { startRun } from './start.ts';

async function present(ctx: Ctx, row: RunsTable): Promise<Run> {
  const stack = await selectStackById(ctx.store.db, row.stack_id);
  return (await presentRuns(ctx.store.db, [row], stack?.name ?? row.stack_id))[0];
}

export async function startStackRun(
  ctx: Ctx,
  advancer: RunAdvancer,
  name: string,
  kind: RunKind,
  input: Record<string, unknown>,
  actor: Actor,
  w?: WriteOptions,
): Promise<Run> {
  const row = await startRun(ctx, name, kind, input, actor, w);
  void advancer.kick(row.id);
  return present(ctx, row);
}

/** Cancel (SPEC §12.4): asked once on the run; the advancer cancels its launched units and ends it. */
export async function cancelStackRun(
  ctx: Ctx,
  advancer: RunAdvancer,
  name: string,
  actor: Actor,
  w?: WriteOptions,
): Promise<Run> {
  const row = await transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const stack = await selectStackByRef(trx, name);
    if (!stack) throw new LifelineError('NOT_FOUND', `no stack ${name}`);
    const run = stack.active_run_id ? await selectRunById(trx, stack.active_run_id) : undefined;
    const d = decideRunCancel(
      run ? { state: run.state as RunState, cancelRequested: run.cancel_requested_at != null } : null,
    );
    if (!d.ok) throw new LifelineError(d.refusal.code, d.refusal.detail);
    if (d.action === 'already_requested') return { result: run!, events: [] };
    const at = nowIso();
    const version = await updateRun(
      trx,
      run!.id,
      Number(run!.version),
      { cancel_requested_at: at, cancel_requested_by: actor.name },
      at,
    );
    const events = await insertEvents(
      trx,
      [
        {
          type: 'cancel_requested',
          deployment_id: null,
          attempt_id: null,
          stack_id: stack.id,
          data: { entity: 'run', id: run!.id, actor: actor.name },
        },
      ],
      at,
    );
    return {
      result: { ...run!, version, cancel_requested_at: at, cancel_requested_by: actor.name, updated_at: at },
      events,
    };
  });
  void advancer.kick(row.id);
  return present(ctx, row);
}

export async function getRun(ctx: Ctx, id: string): Promise<Run> {
  const row = await selectRunById(ctx.store.db, id);
  if (!row) throw new LifelineError('NOT_FOUND', `no run ${id}`);
  return present(ctx, row);
}

export async function listRuns(
  ctx: Ctx,
  name: string,
  q: { limit?: number; cursor?: string },
): Promise<Page<Run>> {
  const stack = await selectStackByRef(ctx.store.db, name);
  if (!stack) throw new LifelineError('NOT_FOUND', `no stack ${name}`);
  const limit = Math.min(Math.max(q.limit ?? 50, 1), 500);
  const rows = await selectRunPage(ctx.store.db, stack.id, {
    limit: limit + 1,
    ...(q.cursor ? { before: q.cursor } : {}),
  });
  const page = rows.slice(0, limit);
  return {
    items: await presentRuns(ctx.store.db, page, stack.name),
    next_cursor: rows.length > limit ? page[page.length - 1].id : null,
  };
}
