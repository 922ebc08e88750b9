// Runs a plan's check (no shell) and records its verdict; on an `unknown` deployment the verdict
// resolves the state in the same transaction as the check_result event.
import { spawn } from 'node:child_process';
import type { PlanConfig } from '../config/types.ts';
import { checkVerdict, decideCheckResult } from '../domain/transitions.ts';
import type { Actor, DeploymentState } from '../domain/types.ts';
import { selectDeploymentById } from '../store/deployments.ts';
import type { DeploymentsTable } from '../store/schema.ts';
import { applyTransition } from '../store/transition.ts';
import { buildPlanEnv, ensureWorkspace } from '../runner/env.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { transact } from './tx.ts';

function runArgv(
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  timeoutMs: number,
): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { env, cwd, stdio: 'ignore', detached: true });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

export async function runCheck(
  ctx: Ctx,
  dep: DeploymentsTable,
  plan: PlanConfig,
  actor: Actor,
): Promise<void> {
  const workspace = ensureWorkspace(ctx.config.dataDir, dep.id);
  const env = buildPlanEnv(plan, {
    kind: 'check',
    params: dep.params,
    deploymentId: dep.id,
    deploymentName: dep.name,
    workspace,
  });
  const rc = await runArgv(plan.check!, env, workspace, plan.timeoutMs);
  const verdict = checkVerdict(rc);
  await transact(ctx.store, ctx.bus, async (trx) => {
    const fresh = await selectDeploymentById(trx, dep.id);
    if (!fresh || fresh.deleted_at) return { result: undefined, events: [] };
    const writes = decideCheckResult(fresh.state as DeploymentState, verdict);
    const events = await applyTransition(trx, {
      at: nowIso(),
      actor: actor.name,
      deployment: {
        id: fresh.id,
        expectState: fresh.state,
        expectVersion: Number(fresh.version),
        change: writes.deployment,
      },
      eventsBefore: [
        {
          type: 'check_result',
          deployment_id: fresh.id,
          attempt_id: null,
          data: { rc, verdict, actor: actor.name },
        },
      ],
    });
    return { result: undefined, events };
  });
}
