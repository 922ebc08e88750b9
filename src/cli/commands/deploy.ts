// `lifeline deploy NAME [--param k=v]… [--force] [--follow]`
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { attemptCommand, startAttempt } from '../client/attempts.ts';
import { coerceParams, collectPair } from '../client/params.ts';

interface Opts {
  param?: [string, string][];
  force?: boolean;
  follow?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  attemptCommand(program.command('deploy'), 'start a deploy attempt')
    .argument('<name>', 'deployment name or id')
    .option(
      '--param <key=value>',
      "a param for this attempt, repeatable; merged over the deployment's, typed by the plan's schema",
      collectPair,
    )
    .option('--force', 'deploy over an unknown state (admin)')
    .action(
      action(async (ctx, name: string, opts: Opts) =>
        startAttempt(
          ctx,
          name,
          async (dep) => {
            let params: Record<string, unknown> | undefined;
            if (opts.param && opts.param.length > 0) {
              const plan = (await ctx.api.plans()).find((p) => p.name === dep.plan);
              params = coerceParams(opts.param, plan?.params_schema);
            }
            return ctx.api.startDeploy(dep.id, { params, force: opts.force ? true : undefined });
          },
          opts,
        ),
      ),
    );
}
