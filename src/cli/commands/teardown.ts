// `lifeline teardown NAME --confirm NAME [--force] [--follow]`
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { attemptCommand, startAttempt } from '../client/attempts.ts';

interface Opts {
  confirm: string;
  force?: boolean;
  follow?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  attemptCommand(program.command('teardown'), 'start a teardown attempt')
    .argument('<name>', 'deployment name or id')
    .requiredOption('--confirm <name>', 'the deployment name again, to confirm')
    .option('--force', 'tear down an unknown deployment (admin)')
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
