// `lifeline rollback NAME [--to N] [--force] [--follow]`: a deploy attempt with the params of the last
// succeeded deploy (SPEC §9.2), started and followed like `lifeline deploy`.
import { InvalidArgumentError, type Command } from 'commander';
import { action } from '../client/action.ts';
import { startAttempt } from '../client/attempts.ts';

interface Opts {
  to?: number;
  force?: boolean;
  follow?: boolean;
  json?: boolean;
}

function attemptNumber(v: string): number {
  if (!/^[1-9][0-9]{0,15}$/.test(v)) throw new InvalidArgumentError('must be an attempt number (1, 2, …)');
  return Number(v);
}

export function register(program: Command): void {
  program
    .command('rollback')
    .description(
      'deploy again with the params of the last succeeded deploy attempt (or of attempt --to); with --follow, exit 0 succeeded, 1 failed or cancelled, 3 unknown',
    )
    .argument('<name>', 'deployment name or id')
    .option('--to <n>', 'the number of the succeeded deploy attempt to roll back to', attemptNumber)
    .option('--force', 'roll back over an unknown state (admin)')
    .option('--follow', 'show the attempt live until it ends; the exit code tells the outcome')
    .option('--json', 'print the attempt as JSON (with --follow: its events as JSON lines, then the result)')
    .action(
      action(async (ctx, name: string, opts: Opts) =>
        startAttempt(
          ctx,
          name,
          (dep) => ctx.api.rollback(dep.id, { to: opts.to, force: opts.force ? true : undefined }),
          opts,
        ),
      ),
    );
}
