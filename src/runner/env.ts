// The environment a plan's process gets, for attempts and checks alike. Built explicitly, never
// from the server's whole environment: tokens read through `token_env`, database passwords
// (PGPASSWORD, DATABASE_URL) and cloud keys of the server reach a plan only when its config names
// them in `env_passthrough` (issue 9, docs/plan-environment.md).
import fs from 'node:fs';
import path from 'node:path';

/** Taken from the server when set: enough to find programs, write temp files and format text. */
export const BASE_ENV_NAMES: readonly string[] = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'TZ',
  'USER',
  'LOGNAME',
  'SHELL',
  'TMPDIR',
];

export interface PlanEnvSource {
  /** The plan's own `env` from the config. */
  env: Record<string, string>;
  /** Server variables the plan's config lets through by name. */
  envPassthrough: readonly string[];
}

/** What the runner tells the plan (SPEC §4). Attempt fields are absent for a check. */
export interface RunnerVars {
  kind: 'deploy' | 'teardown' | 'check';
  params: string;
  deploymentId: string;
  deploymentName: string;
  workspace: string;
  paramsFile?: string;
  attemptId?: string;
  attemptNumber?: number;
  eventsFile?: string;
  /** A stack unit's attempt (SPEC §12.2): its stack, key, index and the inputs file. */
  stack?: { stack: string; unit: string; index: number; inputsFile: string };
}

/** What a stack unit's attempt is told about its stack (SPEC §12.2). */
export interface StackVars {
  stack: string;
  unit: string;
  /** 1…count (1 for a single unit). */
  index: number;
  /** `{"<key>": {"<deployment name>": {outputs}}}` of every unit it comes after. */
  inputs: Record<string, Record<string, unknown>>;
}

/**
 * base < passthrough < the plan's env < the runner's LIFELINE_* variables. The config refuses a
 * plan env or passthrough name that is a runner variable, so the last layer only adds.
 */
export function buildPlanEnv(
  plan: PlanEnvSource,
  vars: RunnerVars,
  serverEnv: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...BASE_ENV_NAMES, ...plan.envPassthrough]) {
    const v = serverEnv[name];
    if (v !== undefined) env[name] = v;
  }
  Object.assign(env, plan.env);
  const runner: Record<string, string | undefined> = {
    LIFELINE_PARAMS: vars.params,
    LIFELINE_PARAMS_FILE: vars.paramsFile,
    LIFELINE_DEPLOYMENT_ID: vars.deploymentId,
    LIFELINE_DEPLOYMENT_NAME: vars.deploymentName,
    LIFELINE_ATTEMPT_ID: vars.attemptId,
    LIFELINE_ATTEMPT_NUMBER: vars.attemptNumber === undefined ? undefined : String(vars.attemptNumber),
    LIFELINE_KIND: vars.kind,
    LIFELINE_WORKSPACE: vars.workspace,
    LIFELINE_EVENTS_FILE: vars.eventsFile,
    LIFELINE_STACK: vars.stack?.stack,
    LIFELINE_UNIT: vars.stack?.unit,
    LIFELINE_UNIT_INDEX: vars.stack === undefined ? undefined : String(vars.stack.index),
    LIFELINE_INPUTS: vars.stack?.inputsFile,
  };
  for (const [k, v] of Object.entries(runner)) if (v !== undefined) env[k] = v;
  return env;
}

/** The deployment's workspace (kept across attempts, SPEC §4), created if missing. */
export function ensureWorkspace(dataDir: string, deploymentId: string): string {
  const dir = path.join(dataDir, 'workspaces', deploymentId);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}
