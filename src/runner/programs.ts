// Whether each plan's programs can be run, checked when the config loads: a missing or
// non-executable program is told at start (a warning), not first at the plan's first attempt.
import { resolveExecutable } from './spawn.ts';

export interface PlanPrograms {
  name: string;
  deploy: string[];
  teardown: string[];
  check: string[] | null;
  env: Record<string, string>;
}

export interface MissingProgram {
  plan: string;
  kind: 'deploy' | 'teardown' | 'check';
  program: string;
}

/** Every plan program the runner would not find, looked up as the launch does (the plan's PATH). */
export function missingPrograms(
  plans: Record<string, PlanPrograms>,
  serverEnv: NodeJS.ProcessEnv = process.env,
): MissingProgram[] {
  const out: MissingProgram[] = [];
  for (const plan of Object.values(plans)) {
    const PATH = plan.env.PATH ?? serverEnv.PATH;
    for (const kind of ['deploy', 'teardown', 'check'] as const) {
      const argv = plan[kind];
      if (argv && !resolveExecutable(argv[0], PATH)) out.push({ plan: plan.name, kind, program: argv[0] });
    }
  }
  return out;
}
