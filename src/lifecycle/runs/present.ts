// A run row as the API serves it.
import type { Kysely } from 'kysely';
import type { Run, RunKind, RunState, RunStep } from '../../domain/stack-run.ts';
import { selectDeploymentNames } from '../../store/runs.ts';
import type { Database, RunsTable } from '../../store/schema.ts';
import { runOptions } from './world.ts';

export async function presentRuns(
  db: Kysely<Database>,
  rows: RunsTable[],
  stackName: string,
): Promise<Run[]> {
  const ids = new Set<string>();
  const stepsOf = rows.map((r) => JSON.parse(r.steps) as RunStep[]);
  for (const steps of stepsOf) for (const s of steps) ids.add(s.deployment_id);
  const names = await selectDeploymentNames(db, [...ids]);
  return rows.map((r, i) => {
    const { on_failure, units, all, force } = runOptions(r);
    return {
      id: r.id,
      stack_id: r.stack_id,
      stack: stackName,
      kind: r.kind as RunKind,
      state: r.state as RunState,
      version: Number(r.version),
      on_failure,
      options: {
        ...(units !== undefined ? { units } : {}),
        ...(all !== undefined ? { all } : {}),
        ...(force !== undefined ? { force } : {}),
      },
      actor: r.actor,
      reason: r.reason,
      cancel_requested_at: r.cancel_requested_at ?? null,
      steps: stepsOf[i].map((s) => ({ ...s, deployment: names.get(s.deployment_id) ?? s.deployment_id })),
      created_at: r.created_at,
      updated_at: r.updated_at,
      ended_at: r.ended_at,
    };
  });
}
