// Freezes (SPEC §13.2): the file's, and those made and lifted through the API. Which are in force is
// judged on the database's clock, the one the freeze gate uses. Creating or lifting a freeze appends no
// event of its own: the row keeps who made it and who lifted it (GET /v1/freezes), and the attempts it
// holds or lets go say so in their own gate_waiting / gate_opened events.
import { z } from 'zod';
import { freezeMatchSchema, checkTime } from '../config/freezes.ts';
import { LifelineError, type FieldError } from '../domain/errors.ts';
import { inForce, type Freeze, type FreezeMatch } from '../domain/freeze.ts';
import type { Actor } from '../domain/types.ts';
import { dialectOf, selectDbNow } from '../store/instances.ts';
import {
  insertFreeze,
  liftFreeze,
  selectStandingFreeze,
  selectStandingFreezes,
  toFreeze,
} from '../store/freezes.ts';
import type { FreezesTable } from '../store/schema.ts';
import type { FreezeInfo, NewFreeze } from './api.ts';
import type { Ctx } from './context.ts';
import { newFreezeId } from './ids.ts';
import { transact } from './tx.ts';
import { checkReason, validation } from './validate.ts';

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Every freeze, the file's first, each with whether it is in force now (the database's clock). */
export async function listFreezes(ctx: Ctx): Promise<{ items: FreezeInfo[] }> {
  const db = ctx.store.db;
  const [rows, now] = await Promise.all([selectStandingFreezes(db), selectDbNow(db, ctx.store.dialect)]);
  return {
    items: [
      ...ctx.config.freezes.map((f) => present(f, now, null)),
      ...rows.map((r) => present(toFreeze(r), now, r)),
    ],
  };
}

/** Every freeze that may hold an attempt: the file's and the standing API ones. */
export async function allFreezes(ctx: Ctx, db = ctx.store.db): Promise<Freeze[]> {
  return [...ctx.config.freezes, ...(await selectStandingFreezes(db)).map(toFreeze)];
}

/**
 * POST /v1/freezes: a freeze in force from now until `until`. 422 for bad input or an `until` not in the
 * future; 409 FREEZE_EXISTS when a freeze of that name is in the file or in force. A standing API freeze
 * of that name that has ended is replaced (marked lifted by this caller).
 */
export async function createFreeze(ctx: Ctx, input: NewFreeze, actor: Actor): Promise<FreezeInfo> {
  const checked = checkNewFreeze(input);
  if (ctx.config.freezes.some((f) => f.name === checked.name)) {
    throw new LifelineError(
      'FREEZE_EXISTS',
      `freeze "${checked.name}" is in the config file: choose another name (the file's freezes change with the file)`,
    );
  }
  const info = await transact(ctx.store, ctx.bus, async (trx) => {
    const nowMs = await selectDbNow(trx, dialectOf(trx));
    if (checked.untilMs <= nowMs) {
      throw validation(
        'until',
        `is not in the future (the database's clock is ${new Date(nowMs).toISOString()})`,
      );
    }
    const at = new Date(nowMs).toISOString();
    const old = await selectStandingFreeze(trx, checked.name);
    if (old) {
      if (inForce(toFreeze(old), nowMs)) {
        throw new LifelineError(
          'FREEZE_EXISTS',
          `freeze "${checked.name}" is in force until ${old.until_at}: lift it first (DELETE /v1/freezes/${checked.name})`,
        );
      }
      await liftFreeze(trx, old.id, at, actor.name);
    }
    const row: FreezesTable = {
      id: newFreezeId(),
      name: checked.name,
      match: JSON.stringify(checked.match),
      from_at: at,
      until_at: new Date(checked.untilMs).toISOString(),
      reason: checked.reason,
      mode: checked.when,
      created_by: actor.name,
      created_at: at,
      lifted_at: null,
      lifted_by: null,
    };
    await insertFreeze(trx, row);
    return { result: present(toFreeze(row), nowMs, row), events: [] };
  });
  ctx.freezesChanged?.();
  return info;
}

/** DELETE /v1/freezes/{name}: lifts a standing API freeze. 404 when none; 409 for one of the file's. */
export async function deleteFreeze(ctx: Ctx, name: string, actor: Actor): Promise<void> {
  if (ctx.config.freezes.some((f) => f.name === name)) {
    throw new LifelineError(
      'INVALID_TRANSITION',
      `freeze "${name}" is in the config file: remove it there (and restart) to lift it`,
    );
  }
  await transact(ctx.store, ctx.bus, async (trx) => {
    const row = await selectStandingFreeze(trx, name);
    if (!row) throw new LifelineError('NOT_FOUND', `no freeze named "${name}" stands`);
    const nowMs = await selectDbNow(trx, dialectOf(trx));
    await liftFreeze(trx, row.id, new Date(nowMs).toISOString(), actor.name);
    return { result: undefined, events: [] };
  });
  ctx.freezesChanged?.();
}

function present(f: Freeze, nowMs: number, row: FreezesTable | null): FreezeInfo {
  return {
    name: f.name,
    source: f.source,
    match: f.match,
    from: f.fromMs === null ? null : new Date(f.fromMs).toISOString(),
    until: new Date(f.untilMs).toISOString(),
    when: f.when,
    in_force: inForce(f, nowMs),
    reason: row?.reason ?? null,
    created_by: row?.created_by ?? null,
    created_at: row?.created_at ?? null,
  };
}

interface CheckedFreeze {
  name: string;
  match: FreezeMatch;
  untilMs: number;
  reason: string;
  when: 'queue' | 'reject';
}

/** The body of POST /v1/freezes, checked field by field before anything is read or written. */
function checkNewFreeze(input: NewFreeze): CheckedFreeze {
  const errors: FieldError[] = [];
  if (typeof input.name !== 'string' || !NAME_RE.test(input.name)) {
    errors.push({ field: 'name', reason: 'expected lower-case letters, digits, _ and - (at most 63)' });
  }
  const m = freezeMatchSchema().safeParse(input.match ?? {});
  if (!m.success) {
    for (const iss of m.error.issues) {
      errors.push({ field: ['match', ...iss.path].join('.'), reason: issueText(iss) });
    }
  }
  const until = checkTime(input.until);
  if (typeof until !== 'number') errors.push({ field: 'until', reason: until.reason });
  try {
    checkReason(input.reason);
  } catch (e) {
    errors.push(...((e as LifelineError).errors ?? []));
  }
  const when = input.when ?? 'queue';
  if (when !== 'queue' && when !== 'reject')
    errors.push({ field: 'when', reason: 'expected queue or reject' });
  if (errors.length > 0) {
    throw new LifelineError('VALIDATION', errors.map((e) => `${e.field}: ${e.reason}`).join('; '), errors);
  }
  const match = m.data!;
  return {
    name: input.name,
    match: {
      ...(match.plans ? { plans: match.plans } : {}),
      ...(match.labels ? { labels: match.labels } : {}),
      ...(match.kinds ? { kinds: match.kinds } : {}),
    },
    untilMs: until as number,
    reason: input.reason,
    when,
  };
}

function issueText(iss: z.core.$ZodIssue): string {
  if (iss.code === 'unrecognized_keys')
    return `unknown key ${iss.keys.join(', ')} (expected plans, labels, kinds)`;
  if (iss.code === 'invalid_type') return `expected ${iss.expected}`;
  return iss.message;
}
