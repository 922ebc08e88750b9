// `lifeline deploy NAME [--param k=v]… [--force] [--follow]`
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { startAttempt } from '../client/attempts.ts';
import { coerceParams, collectPair } from '../client/params.ts';

interface Opts {
  param?: [string, string][];
  force?: boolean;
  follow?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('deploy')
    .description(
      'start a deploy attempt; with --follow, watch it and exit 0 succeeded, 1 failed or cancelled, 3 unknown',
    )
    .argument('<name>', 'deployment name or id')
    .option(
      '--param <key=value>',
      "a param for this attempt, repeatable; merged over the deployment's, typed by the plan's schema",
      collectPair,
    )
    .option('--force', 'deploy over an unknown state (admin)')
    .option('--follow', 'show the attempt live until it ends; the exit code tells the outcome')
    .option('--json', 'print the attempt as JSON (with --follow: its events as JSON lines, then the result)')
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
