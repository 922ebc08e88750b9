// What a unit's plan gets besides its params (SPEC §12.2): its stack, key and index, and the current
// outputs of every unit it comes `after`, read in the transaction that lets it start (its accept, or the
// opening of its last gate), written to LIFELINE_INPUTS by the runner. Outputs are stored masked, so a
// secret param value of a dependency reaches its dependants as `***` too.
import type { Transaction } from 'kysely';
import { parseOutputs } from '../../domain/outputs.ts';
import type { StackSpec } from '../../domain/stack-spec.ts';
import type { StackVars } from '../../runner/env.ts';
import type { Database, DeploymentsTable } from '../../store/schema.ts';

export async function unitLaunchVars(
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
    const rows = await trx
      .selectFrom('deployments')
      .select(['name', 'unit_key', 'outputs'])
      .where('stack_id', '=', dep.stack_id!)
      .where('unit_key', 'in', keys)
      .where('deleted_at', 'is', null)
      .orderBy('name')
      .execute();
    for (const r of rows) {
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
