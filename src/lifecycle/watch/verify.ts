// The verifying check after exit 0 (SPEC §9.3), run by the watcher before it records the end.
import { findPlan } from '../../config/load.ts';
import { checkVerdict } from '../../domain/transitions.ts';
import type { AttemptKind } from '../../domain/types.ts';
import { buildPlanEnv, ensureWorkspace } from '../../runner/env.ts';
import { makeRedactor } from '../../runner/redact.ts';
import { selectDeploymentById } from '../../store/deployments.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import type { EndDetails } from '../attempt-writes.ts';
import { runArgvCaptured } from '../check.ts';
import { secretValues } from '../context.ts';
import type { Host } from './host.ts';
import { mayAct } from './may-act.ts';
import type { Watch } from './watches.ts';

/**
 * The plan's check after exit 0 when its kind is verified: started once per watch, 'pending' until
 * it ends, then its masked result; null when the kind is not verified.
 */
export async function verify(
  host: Host,
  row: AttemptsTable,
  w: Watch,
): Promise<EndDetails['check'] | 'pending' | null> {
  const { ctx } = host;
  if (!w.check) {
    // A check is an action on the deployment: only while this instance holds its lease.
    if (!mayAct(ctx)) return 'pending';
    // The plan is known when this instance launched it: no check to run means no read (issue 18).
    if (w.plan !== null) {
      const known = findPlan(ctx.config, w.plan);
      if (!known?.check || !known.verify[row.kind as AttemptKind]) return null;
    }
    const dep = await selectDeploymentById(ctx.store.db, row.deployment_id);
    const plan = dep ? findPlan(ctx.config, dep.plan) : undefined;
    if (!dep || !plan?.check || !plan.verify[row.kind as AttemptKind]) return null;
    const workspace = ensureWorkspace(ctx.config.dataDir, dep.id);
    const env = buildPlanEnv(plan, {
      kind: 'check',
      params: row.params,
      deploymentId: dep.id,
      deploymentName: dep.name,
      workspace,
    });
    const run = runArgvCaptured(plan.check, env, workspace, plan.checkTimeoutMs);
    const redact = makeRedactor(secretValues(plan, JSON.parse(row.params), row.secret_params));
    // A check we stopped ourselves (unwatch, close) says nothing about the deployment: its
    // result is dropped, and whoever adopts the attempt runs the check again.
    let stopped = false;
    const stop = () => {
      stopped = true;
      run.stop();
    };
    const check: NonNullable<Watch['check']> = { stop, result: null, redact };
    w.check = check;
    void run.done.then((r) => {
      if (stopped) return;
      check.result = r;
      host.wake(row.id);
    });
    return 'pending';
  }
  const r = w.check.result;
  if (!r) return 'pending';
  return { rc: r.rc, verdict: checkVerdict(r.rc), lines: r.lines.map((l) => w.check!.redact(l)) };
}
