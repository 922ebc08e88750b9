// `lifeline ls [--state S] [--plan P]`
import { Option, type Command } from 'commander';
import { DEPLOYMENT_STATES } from '../../domain/types.ts';
import { action } from '../client/action.ts';
import { badge, driftMark, labelsText, relativeTime, stateWord, table } from '../client/format.ts';
import { collectPair } from '../client/params.ts';

interface Opts {
  state?: string;
  plan?: string;
  label?: [string, string][];
  drifted?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('ls')
    .alias('list')
    .description('list deployments, newest first')
    .addOption(new Option('--state <state>', 'only this state').choices([...DEPLOYMENT_STATES]))
    .option('--plan <plan>', 'only this plan')
    .option('--label <key=value>', 'only with this label, repeatable (all must match)', collectPair)
    .option('--drifted', 'only deployments a check found drifted')
    .option('--json', 'print {items, next_cursor} as JSON')
    .action(
      action(async ({ api, o }, opts: Opts) => {
        const items = await api.allDeployments({
          state: opts.state,
          plan: opts.plan,
          label: opts.label?.map(([k, v]) => `${k}=${v}`),
          drift: opts.drifted ? 'true' : undefined,
        });
        if (opts.json) return o.json({ items, next_cursor: null });
        if (items.length === 0) {
          o.print(
            opts.state || opts.plan || opts.label || opts.drifted
              ? 'No deployments match.'
              : 'No deployments.',
          );
          return;
        }
        const { c } = o;
        const rows = items.map((d) => [
          c.bold(d.name),
          d.drift ? `${badge(d.state, c)} ${driftMark(d.drift, c)}` : badge(d.state, c),
          d.plan,
          d.current_attempt
            ? `#${d.current_attempt.number} ${d.current_attempt.kind} ${stateWord(d.current_attempt.state, c)}`
            : c.dim('-'),
          relativeTime(d.state_changed_at),
          labelsText(d.labels),
        ]);
        for (const line of table(['NAME', 'STATE', 'PLAN', 'ATTEMPT', 'CHANGED', 'LABELS'], rows, c))
          o.print(line);
      }),
    );
}
