// The verifying check after exit 0 (SPEC §9.3), run by the watcher before it records the end.
import fs from 'node:fs';
import path from 'node:path';
import { findPlan } from '../../config/load.ts';
import { checkVerdict } from '../../domain/transitions.ts';
import type { AttemptKind } from '../../domain/types.ts';
import { buildPlanEnv, ensureWorkspace } from '../../runner/env.ts';
import { CHECK_OUTPUT_LINES } from '../../runner/launcher-api.ts';
import { makeRedactor } from '../../runner/redact.ts';
import { selectDeploymentById } from '../../store/deployments.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import type { EndDetails } from '../attempt-writes.ts';
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
    // Through the runner, like every other check: no fork of this process per verified attempt. Its
    // first lines land in the run dir, read once it ended.
    const output = path.join(row.run_dir!, CHECK_OUTPUT_FILE);
    const run = ctx.checks.startCheck({
      argv: plan.check,
      env,
      cwd: workspace,
      timeoutMs: plan.checkTimeoutMs,
      output,
    });
    const redact = makeRedactor(secretValues(plan, JSON.parse(row.params), row.secret_params));
    // A check we stopped ourselves (unwatch, close) says nothing about the deployment: its
    // result is dropped, and whoever adopts the attempt runs the check again.
    let stopped = false;
    const stop = () => {
      stopped = true;
      run.kill();
    };
    const check: NonNullable<Watch['check']> = { stop, result: null, redact };
    w.check = check;
    run.done.then(
      (rc) => {
        if (stopped) return;
        check.result = { rc, lines: readCheckOutput(output) };
        host.wake(row.id);
      },
      // CheckStopped: this server is stopping; whoever adopts the attempt runs the check again.
      () => undefined,
    );
    return 'pending';
  }
  const r = w.check.result;
  if (!r) return 'pending';
  return { rc: r.rc, verdict: checkVerdict(r.rc), lines: r.lines.map((l) => w.check!.redact(l)) };
}

/** The verifying check's output in the attempt's run dir (written by the runner or the fallback). */
export const CHECK_OUTPUT_FILE = 'check-output';

/** Its lines: the last one without a newline too, unless empty; none when there is no file. */
function readCheckOutput(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(0, CHECK_OUTPUT_LINES);
}
