// `lifeline resolve NAME --state ready|failed|torn_down --reason TEXT`
import { Option, type Command } from 'commander';
import { action } from '../client/action.ts';
import { badge } from '../client/format.ts';

export function register(program: Command): void {
  program
    .command('resolve')
    .description('resolve an unknown deployment to the state an operator found (admin)')
    .argument('<name>', 'deployment name or id')
    .addOption(
      new Option('--state <state>', 'the real state')
        .choices(['ready', 'failed', 'torn_down'])
        .makeOptionMandatory(),
    )
    .requiredOption('--reason <text>', 'why: what was checked (recorded with the transition)')
    .option('--json', 'print the deployment as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: { state: string; reason: string; json?: boolean }) => {
        const dep = await api.resolve(name, { state: opts.state, reason: opts.reason });
        if (opts.json) return o.json(dep);
        o.print(
          `resolved ${o.c.bold(dep.name)}: ${badge(dep.state, o.c)} ${o.c.dim(`(version ${dep.version})`)}`,
        );
      }),
    );
}
