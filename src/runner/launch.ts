// Launching one attempt: its run dir and workspace, params.json, the plan's environment, and the
// detached supervisor. Knows nothing about the database: the caller records what comes back.
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { PlanConfig } from '../config/types.ts';
import { runDirPaths, type RunDirPaths } from './rundir.ts';
import { resolveExecutable, spawnSupervisor } from './spawn.ts';

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
}

/** `started`: the supervisor is spawned (it outlives the server); `not_found`: no program to run. */
export type LaunchResult = { kind: 'started'; child: ChildProcess } | { kind: 'not_found'; program: string };

export function launchAttempt(req: LaunchRequest): LaunchResult {
  const { attempt, plan } = req;
  const argv = attempt.kind === 'deploy' ? plan.deploy : plan.teardown;
  const dir = attempt.run_dir;
  const workspace = path.join(req.dataDir, 'workspaces', attempt.deployment_id);
  fs.mkdirSync(dir, { recursive: true });
  fs.mkdirSync(workspace, { recursive: true });
  const files = runDirPaths(dir);
  fs.writeFileSync(files.params, attempt.params, { mode: 0o600 });
  const env = planEnv(req, workspace, files);
  if (!resolveExecutable(argv[0], env.PATH, workspace)) return { kind: 'not_found', program: argv[0] };
  return { kind: 'started', child: spawnSupervisor({ dir, argv, env, cwd: workspace }) };
}

/** The plan's environment (SPEC §4). */
function planEnv(req: LaunchRequest, workspace: string, files: RunDirPaths): NodeJS.ProcessEnv {
  const a = req.attempt;
  // The server's own LIFELINE_* variables (tokens among them) never reach a plan.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LIFELINE_')));
  return {
    ...base,
    ...req.plan.env,
    LIFELINE_PARAMS: a.params,
    LIFELINE_PARAMS_FILE: files.params,
    LIFELINE_DEPLOYMENT_ID: a.deployment_id,
    LIFELINE_DEPLOYMENT_NAME: req.deploymentName,
    LIFELINE_ATTEMPT_ID: a.id,
    LIFELINE_ATTEMPT_NUMBER: String(a.number),
    LIFELINE_KIND: a.kind,
    LIFELINE_WORKSPACE: workspace,
    LIFELINE_EVENTS_FILE: files.events,
  };
}
