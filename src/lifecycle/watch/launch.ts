// Starts the supervisor of a freshly accepted attempt (the process outlives this server), and records
// the end at once when it cannot be started.
import type { PlanConfig } from '../../config/types.ts';
import type { StackVars } from '../../runner/env.ts';
import { launchAttempt } from '../../runner/launch.ts';
import type { AttemptsTable } from '../../store/schema.ts';
import { endAttempt } from '../attempt-writes.ts';
import type { Host } from './host.ts';

export interface LaunchSpec {
  attempt: AttemptsTable;
  deploymentName: string;
  plan: PlanConfig;
  /** A stack unit's attempt: what its plan is told about its stack (SPEC §12.2). */
  stack?: StackVars;
}

export async function launch(host: Host, spec: LaunchSpec): Promise<void> {
  const { ctx } = host;
  const { attempt, plan } = spec;
  const startFailed = (detail: string) =>
    endAttempt(
      ctx,
      attempt.id,
      { kind: 'start_failed' },
      { rc: null, recovered: false, actor: 'runner', detail },
    );
  try {
    const res = launchAttempt({
      attempt: { ...attempt, run_dir: attempt.run_dir! },
      deploymentName: spec.deploymentName,
      plan,
      dataDir: ctx.config.dataDir,
      launcher: host.launcher,
      ...(spec.stack ? { stack: spec.stack } : {}),
    });
    if (res.kind === 'not_found') {
      ctx.log.warn({ attempt: attempt.id, program: res.program }, 'plan program not found or not executable');
      await startFailed(`program not found or not executable: ${res.program}`);
      return;
    }
    const w = host.watches.add(attempt.id, false, attempt.run_dir!);
    w.plan = plan.name;
    w.launchedAt = Date.now();
    // The runner forks the supervisor a moment after we ask (longer when it must start first).
    const child = res.child;
    child.once('spawn', () => {
      w.launchedAt = 0;
      w.launchedPid = child.pid ?? 0;
      host.wake(attempt.id);
    });
    const settled = () => {
      w.launchedAt = 0;
      w.launchedPid = 0;
      host.wake(attempt.id);
    };
    child.on('exit', settled);
    child.on('error', (err) => {
      ctx.log.error({ attempt: attempt.id, err: err.message }, 'supervisor failed to start');
      settled();
    });
  } catch (err) {
    ctx.log.error({ attempt: attempt.id, err: (err as Error).message }, 'launch failed');
    await startFailed(`could not start the plan: ${(err as Error).message}`);
  }
}
