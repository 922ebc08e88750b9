// `lifeline create NAME --plan P [--param k=v]… [--label k=v]…`
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { badge } from '../client/format.ts';
import { coerceParams, collectPair, pairsToObject } from '../client/params.ts';

interface Opts {
  plan: string;
  param?: [string, string][];
  label?: [string, string][];
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('create')
    .description('create a deployment (state pending)')
    .argument('<name>', 'deployment name: ^[a-z0-9][a-z0-9-]{0,62}$')
    .requiredOption('--plan <plan>', 'plan to deploy it with (see GET /v1/plans)')
    .option('--param <key=value>', "a param, repeatable; typed by the plan's params schema", collectPair)
    .option('--label <key=value>', 'a label, repeatable', collectPair)
    .option('--json', 'print the created deployment as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: Opts) => {
        let params: Record<string, unknown> | undefined;
        if (opts.param && opts.param.length > 0) {
          const plan = (await api.plans()).find((p) => p.name === opts.plan);
          // An unknown plan: send the values as they are; the server answers PLAN_NOT_FOUND.
          params = coerceParams(opts.param, plan?.params_schema);
        }
        const labels = opts.label && opts.label.length > 0 ? pairsToObject(opts.label) : undefined;
        const dep = await api.createDeployment({ name, plan: opts.plan, params, labels });
        if (opts.json) return o.json(dep);
        o.print(
          `created ${o.c.bold(dep.name)} ${o.c.dim(`(${dep.id})`)} with plan ${dep.plan}: ${badge(dep.state, o.c)}`,
        );
      }),
    );
}
