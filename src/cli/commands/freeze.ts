// `lifeline freeze ls|add|lift` (SPEC §13.2): list the freezes, freeze now, lift an API freeze (admin).
import { Option, type Command } from 'commander';
import { action } from '../client/action.ts';
import { labelsText, table, timestamp } from '../client/format.ts';
import { collectPair } from '../client/params.ts';

interface AddOpts {
  until: string;
  reason: string;
  plan?: string[];
  label?: [string, string][];
  kind?: 'deploy' | 'teardown';
  reject?: boolean;
  json?: boolean;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function register(program: Command): void {
  const freeze = program.command('freeze').description('list, make and lift freezes (SPEC §13.2)');

  freeze
    .command('ls')
    .description('the config file’s freezes and the API’s, with whether each is in force')
    .option('--json', 'print {items} as JSON')
    .action(
      action(async ({ api, o }, opts: { json?: boolean }) => {
        const items = await api.freezes();
        if (opts.json) return o.json({ items });
        if (items.length === 0) return o.print('No freezes.');
        const { c } = o;
        const rows = items.map((f) => [
          c.bold(f.name),
          f.in_force ? c.red('in force') : c.dim('not in force'),
          f.when,
          f.from ? timestamp(f.from) : c.dim('-'),
          timestamp(f.until),
          [
            f.match.plans ? `plans=${f.match.plans.join(',')}` : '',
            f.match.kinds ? `kinds=${f.match.kinds.join(',')}` : '',
            f.match.labels ? labelsText(f.match.labels) : '',
          ]
            .filter(Boolean)
            .join(' ') || c.dim('everything'),
          f.source === 'api' ? `${f.created_by}: ${f.reason}` : c.dim('config file'),
        ]);
        for (const line of table(['NAME', 'NOW', 'WHEN', 'FROM', 'UNTIL', 'MATCH', 'BY'], rows, c))
          o.print(line);
      }),
    );

  freeze
    .command('add')
    .description('freeze now until --until (admin): matching new attempts wait, or are refused with --reject')
    .argument('<name>', 'the freeze name')
    .requiredOption(
      '--until <time>',
      'when it ends: an ISO-8601 time with its zone, e.g. 2026-12-18T18:00:00Z',
    )
    .requiredOption('--reason <text>', 'why (shown by freeze ls)')
    .option('--plan <plan>', 'only this plan, repeatable', collect)
    .option(
      '--label <key=value>',
      'only deployments with this label, repeatable (all must match)',
      collectPair,
    )
    .addOption(new Option('--kind <kind>', 'only this kind of attempt').choices(['deploy', 'teardown']))
    .option('--reject', 'refuse matching attempts (409 FROZEN) instead of holding them')
    .option('--json', 'print the freeze as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: AddOpts) => {
        const f = await api.createFreeze({
          name,
          until: opts.until,
          reason: opts.reason,
          when: opts.reject ? 'reject' : 'queue',
          match: {
            ...(opts.plan ? { plans: opts.plan } : {}),
            ...(opts.label ? { labels: Object.fromEntries(opts.label) } : {}),
            ...(opts.kind ? { kinds: [opts.kind] } : {}),
          },
        });
        if (opts.json) return o.json(f);
        o.print(`froze ${o.c.bold(f.name)} until ${timestamp(f.until)} (${f.when})`);
      }),
    );

  freeze
    .command('lift')
    .description('lift a freeze made through the API (admin): the attempts it held go on, in queue order')
    .argument('<name>', 'the freeze name')
    .action(
      action(async ({ api, o }, name: string) => {
        await api.liftFreeze(name);
        o.print(`lifted ${o.c.bold(name)}`);
      }),
    );
}
