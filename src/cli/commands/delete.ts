// `lifeline delete NAME [--force]`
import type { Command } from 'commander';
import { action } from '../client/action.ts';

export function register(program: Command): void {
  program
    .command('delete')
    .description(
      'delete a pending or torn-down deployment (any non-active one with --force, admin); history is kept',
    )
    .argument('<name>', 'deployment name or id')
    .option('--force', 'delete in any state without an active attempt (admin)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: { force?: boolean; json?: boolean }) => {
        await api.deleteDeployment(name, opts.force === true);
        if (opts.json) return o.json({ deleted: true, name });
        o.print(`deleted ${o.c.bold(name)}`);
      }),
    );
}
