// What a unit's plan gets besides its params (SPEC §12.2): its stack, key and index, and the current
// outputs of every unit it comes `after`, read in the accepting transaction (so they are those the
// dependencies had when the attempt was accepted), written to LIFELINE_INPUTS by the runner.
import type { Transaction } from 'kysely';
import { sql } from 'kysely';
import type { StackSpec } from '../../domain/stack-spec.ts';
import type { StackVars } from '../../runner/env.ts';
import type { Database, DeploymentsTable } from '../../store/schema.ts';
import type { Store } from '../../store/open.ts';
import type { Ctx } from '../context.ts';

/** Whether `deployments.outputs` (migration 014) exists in this store: probed once. */
const outputsColumn = new WeakMap<Store, Promise<boolean>>();

async function probeOutputs(trx: Transaction<Database>, dialect: 'sqlite' | 'postgres'): Promise<boolean> {
  const q =
    dialect === 'sqlite'
      ? sql<{ n: number }>`select count(*) as n from pragma_table_info('deployments') where name = 'outputs'`
      : sql<{ n: number }>`select count(*)::int as n from information_schema.columns
          where table_name = 'deployments' and column_name = 'outputs' and table_schema = current_schema()`;
  const res = await q.execute(trx);
  return Number(res.rows[0]?.n ?? 0) > 0;
}

export async function unitLaunchVars(
  ctx: Ctx,
  trx: Transaction<Database>,
  dep: DeploymentsTable,
): Promise<StackVars | undefined> {
  const stack = await trx
    .selectFrom('stacks')
    .select(['name', 'spec'])
    .where('id', '=', dep.stack_id!)
    .executeTakeFirst();
  if (!stack) return undefined;
  const spec = JSON.parse(stack.spec) as StackSpec;
  const keys = spec.units.find((u) => u.key === dep.unit_key)?.after ?? [];
  const inputs: Record<string, Record<string, unknown>> = {};
  for (const k of keys) inputs[k] = {};
  if (keys.length > 0) {
    let probe = outputsColumn.get(ctx.store);
    if (!probe) {
      probe = probeOutputs(trx, ctx.store.dialect);
      outputsColumn.set(ctx.store, probe);
    }
    const withOutputs = await probe;
    const rows = await trx
      .selectFrom('deployments')
      .select(['name', 'unit_key'])
      .$if(withOutputs, (q) => q.select(sql<string | null>`outputs`.as('outputs')))
      .where('stack_id', '=', dep.stack_id!)
      .where('unit_key', 'in', keys)
      .where('deleted_at', 'is', null)
      .orderBy('name')
      .execute();
    for (const r of rows as { name: string; unit_key: string | null; outputs?: string | null }[]) {
      inputs[r.unit_key!][r.name] = parseOutputs(r.outputs);
    }
  }
  return {
    stack: stack.name,
    unit: dep.unit_key!,
    index: dep.unit_index == null ? 1 : Number(dep.unit_index),
    inputs,
  };
}

function parseOutputs(v: string | null | undefined): Record<string, unknown> {
  if (!v) return {};
  try {
    const o = JSON.parse(v) as unknown;
    return o !== null && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
