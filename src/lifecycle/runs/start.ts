// A new stack run (SPEC §12.4): its targets planned on the units as they are, the run row, the stack's
// active run and its state (deploying / tearing_down) in one transaction; launching is the advancer's.
import { LifelineError } from '../../domain/errors.ts';
import type { StackSpec } from '../../domain/stack-spec.ts';
import { decideRunStart, planRun, runMove, type RunKind, type RunOptions } from '../../domain/stack-run.ts';
import type { Actor } from '../../domain/types.ts';
import { insertEvents } from '../../store/events.ts';
import { claimStackRun, insertRun, selectLastDeployedParams, runTransitionEvent } from '../../store/runs.ts';
import type { RunsTable } from '../../store/schema.ts';
import { selectStackByRef, selectUnitRows, stackStateEvents } from '../../store/stacks.ts';
import type { WriteOptions } from '../api.ts';
import { callerOf } from '../commands/guards.ts';
import type { Ctx } from '../context.ts';
import { newRunId, nowIso } from '../ids.ts';
import { transactCommand } from '../tx.ts';
import { runUnits, type StoredRunOptions } from './world.ts';

/** Key-order-free JSON, so `{a, b}` and `{b, a}` are the same params. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function checkRunInput(kind: RunKind, input: Record<string, unknown>): RunOptions {
  const errors: { field: string; reason: string }[] = [];
  const out: RunOptions = {};
  if (input.force !== undefined) {
    if (typeof input.force !== 'boolean') errors.push({ field: 'force', reason: 'must be a boolean' });
    else out.force = input.force;
  }
  if (kind === 'deploy') {
    if (input.all !== undefined) {
      if (typeof input.all !== 'boolean') errors.push({ field: 'all', reason: 'must be a boolean' });
      else out.all = input.all;
    }
    if (input.units !== undefined) {
      if (!Array.isArray(input.units) || input.units.some((k) => typeof k !== 'string')) {
        errors.push({ field: 'units', reason: 'must be a list of unit keys' });
      } else out.units = [...new Set(input.units as string[])];
    }
    if (out.all && out.units && out.units.length > 0) {
      errors.push({ field: 'all', reason: 'give either all or units, not both' });
    }
  }
  if (errors.length > 0)
    throw new LifelineError('VALIDATION', errors.map((e) => `${e.field} ${e.reason}`).join('; '), errors);
  return out;
}

export async function startRun(
  ctx: Ctx,
  name: string,
  kind: RunKind,
  input: Record<string, unknown>,
  actor: Actor,
  w?: WriteOptions,
): Promise<RunsTable> {
  const options = checkRunInput(kind, input);
  if (kind === 'teardown') {
    if (typeof input.confirm !== 'string' || input.confirm !== name) {
      throw new LifelineError('TEARDOWN_CONFIRM_MISMATCH', `confirm must equal the stack name "${name}"`);
    }
  }
  return transactCommand(ctx.store, ctx.bus, w, async (trx) => {
    const stack = await selectStackByRef(trx, name);
    if (!stack) throw new LifelineError('NOT_FOUND', `no stack ${name}`);
    if (w?.ifVersion !== undefined && Number(stack.version) !== w.ifVersion) {
      throw new LifelineError('VERSION_MISMATCH', `stack is at version ${stack.version}, not ${w.ifVersion}`);
    }
    const started = decideRunStart(stack.active_run_id);
    if (!started.ok) throw new LifelineError(started.refusal.code, started.refusal.detail);
    const id = newRunId();
    const at = nowIso();
    // Claimed first: on Postgres that locks the stack row, so unit transitions (whose stack-state write
    // locks it too) wait for this run, and the units below are read after them.
    await claimStackRun(trx, stack.id, id, at);
    const spec = JSON.parse(stack.spec) as StackSpec;
    const rows = await selectUnitRows(trx, stack.id);
    const changed = new Set<string>();
    if (kind === 'deploy') {
      const ready = rows.filter((r) => r.state === 'ready');
      const deployed = await selectLastDeployedParams(
        trx,
        ready.map((r) => r.id),
      );
      for (const r of ready) {
        const last = deployed.get(r.id);
        if (last === undefined || canonical(JSON.parse(last)) !== canonical(JSON.parse(r.params)))
          changed.add(r.id);
      }
    }
    const planned = planRun(kind, runUnits(spec, rows, changed), options, callerOf(actor));
    if (!planned.ok) {
      const { code, detail, field } = planned.refusal;
      throw new LifelineError(code, detail, field ? [{ field, reason: detail }] : undefined);
    }
    const stored: StoredRunOptions = { ...options, on_failure: spec.on_failure };
    const row: RunsTable = {
      id,
      stack_id: stack.id,
      kind,
      state: 'queued',
      version: 1,
      steps: JSON.stringify(planned.steps),
      options: JSON.stringify(stored),
      actor: actor.name,
      reason: null,
      created_at: at,
      updated_at: at,
      ended_at: null,
      cancel_requested_at: null,
      cancel_requested_by: null,
    };
    await insertRun(trx, row);
    const events = await insertEvents(
      trx,
      [
        runTransitionEvent(row, runMove('accepted', null, 'queued', null), actor.name, 1),
        ...(await stackStateEvents(trx, stack.id, {
          at,
          actor: actor.name,
          trigger: 'run_started',
          reason: id,
        })),
      ],
      at,
    );
    return { result: row, events };
  });
}
