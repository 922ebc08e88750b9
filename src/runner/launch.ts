// Launching one attempt: its run dir and workspace, params.json, the plan's environment, and the
// detached supervisor. Knows nothing about the database: the caller records what comes back.
import fs from 'node:fs';
import path from 'node:path';
import type { PlanConfig } from '../config/types.ts';
import { buildPlanEnv, ensureWorkspace, type StackVars } from './env.ts';
import type { Launcher, SupervisorHandle } from './launcher.ts';
import { assertOwnedDir } from './owned.ts';
import { runDirPaths } from './rundir.ts';
import { resolveExecutable } from './spawn.ts';

export interface LaunchAttempt {
  id: string;
  deployment_id: string;
  number: number;
  kind: string;
  params: string;
  run_dir: string;
}

export interface LaunchRequest {
  attempt: LaunchAttempt;
  deploymentName: string;
  plan: PlanConfig;
  dataDir: string;
  launcher: Launcher;
  /** A stack unit's attempt: LIFELINE_STACK, _UNIT, _UNIT_INDEX and the inputs file. */
  stack?: StackVars;
}

/** `started`: the supervisor is spawned (it outlives the server); `not_found`: no program to run. */
export type LaunchResult =
  { kind: 'started'; child: SupervisorHandle } | { kind: 'not_found'; program: string };

export function launchAttempt(req: LaunchRequest): LaunchResult {
  const { attempt, plan } = req;
  const argv = attempt.kind === 'deploy' ? plan.deploy : plan.teardown;
  const dir = attempt.run_dir;
  const workspace = ensureWorkspace(req.dataDir, attempt.deployment_id);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // params.json is written into it: never into a directory someone else made (or a symlink to one).
  assertOwnedDir(dir, 'run dir');
  const files = runDirPaths(dir);
  fs.writeFileSync(files.params, attempt.params, { mode: 0o600 });
  let stack: { stack: string; unit: string; index: number; inputsFile: string } | undefined;
  if (req.stack) {
    const inputsFile = path.join(dir, 'inputs.json');
    fs.writeFileSync(inputsFile, JSON.stringify(req.stack.inputs), { mode: 0o600 });
    stack = { stack: req.stack.stack, unit: req.stack.unit, index: req.stack.index, inputsFile };
  }
  const env = buildPlanEnv(plan, {
    kind: attempt.kind as 'deploy' | 'teardown',
    params: attempt.params,
    paramsFile: files.params,
    deploymentId: attempt.deployment_id,
    deploymentName: req.deploymentName,
    attemptId: attempt.id,
    attemptNumber: Number(attempt.number),
    workspace,
    eventsFile: files.events,
    ...(stack ? { stack } : {}),
  });
  if (!resolveExecutable(argv[0], env.PATH, workspace)) return { kind: 'not_found', program: argv[0] };
  return { kind: 'started', child: req.launcher.start({ dir, argv, env, cwd: workspace }) };
}
