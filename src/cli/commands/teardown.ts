// `lifeline teardown NAME --confirm NAME [--force] [--follow]`
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { startAttempt } from '../client/attempts.ts';

interface Opts {
  confirm: string;
  force?: boolean;
  follow?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('teardown')
    .description(
      'start a teardown attempt; with --follow, watch it and exit 0 succeeded, 1 failed or cancelled, 3 unknown',
    )
    .argument('<name>', 'deployment name or id')
    .requiredOption('--confirm <name>', 'the deployment name again, to confirm')
    .option('--force', 'tear down an unknown deployment (admin)')
    .option('--follow', 'show the attempt live until it ends; the exit code tells the outcome')
    .option('--json', 'print the attempt as JSON (with --follow: its events as JSON lines, then the result)')
    .action(
      action(async (ctx, name: string, opts: Opts) =>
        startAttempt(
          ctx,
          name,
          (dep) => ctx.api.teardown(dep.id, { confirm: opts.confirm, force: opts.force ? true : undefined }),
          opts,
        ),
      ),
    );
}
