// `lifeline stack deploy|teardown|cancel|runs` (SPEC §12.5): start, stop and list a stack's runs;
// `--follow` watches one to its end and exits 0 succeeded, 1 failed or cancelled, 3 unknown.
import type { Command } from 'commander';
import type { Run } from '../../domain/stack-run.ts';
import { action, EXIT, type Ctx } from '../client/action.ts';
import { relativeTime, stateWord, table } from '../client/format.ts';
import { followRun } from '../client/run-follow.ts';

interface FollowOpts {
  follow?: boolean;
  json?: boolean;
}

const FOLLOW = 'show the units live until the run ends; exit 0 succeeded, 1 failed or cancelled, 3 unknown';
const JSON_HELP = 'print the run as JSON (with --follow: once it has ended)';

/** Prints the run, or follows it to its end. */
async function started({ api, o }: Ctx, run: Run, opts: FollowOpts, verb: string): Promise<number> {
  if (opts.follow) return followRun({ api, o, run, json: opts.json });
  if (opts.json) {
    o.json(run);
    return EXIT.ok;
  }
  const targets = run.steps.filter((s) => s.step !== 'not_needed').length;
  o.print(
    `${verb} ${run.kind} run ${o.c.bold(run.id)} of ${o.c.bold(run.stack)}: ${stateWord(run.state, o.c)}, ` +
      `${targets} of ${run.steps.length} unit${run.steps.length === 1 ? '' : 's'}`,
  );
  o.print(o.c.dim(`watch it with: lifeline stack show ${run.stack}`));
  return EXIT.ok;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerRuns(stack: Command): void {
  stack
    .command('deploy')
    .description('start a deploy run: the units not ready, in dependency order')
    .argument('<name>', 'stack name or id')
    .option('--unit <key>', 'only this unit key and what it needs that is not ready; repeatable', collect)
    .option('--all', 'every unit, ready or not')
    .option('--force', 'deploy over units in state unknown (admin)')
    .option('--follow', FOLLOW)
    .option('--json', JSON_HELP)
    .action(
      action(
        async (ctx, name: string, opts: FollowOpts & { unit?: string[]; all?: boolean; force?: boolean }) => {
          const run = await ctx.api.deployStack(name, {
            units: opts.unit,
            all: opts.all ? true : undefined,
            force: opts.force ? true : undefined,
          });
          return started(ctx, run, opts, 'started');
        },
      ),
    );

  stack
    .command('teardown')
    .description('start a teardown run: every unit that stands, in reverse dependency order')
    .argument('<name>', 'stack name or id')
    .requiredOption('--confirm <name>', 'the stack name again, to confirm')
    .option('--force', 'tear down units in state unknown (admin)')
    .option('--follow', FOLLOW)
    .option('--json', JSON_HELP)
    .action(
      action(async (ctx, name: string, opts: FollowOpts & { confirm: string; force?: boolean }) => {
        const run = await ctx.api.teardownStack(name, {
          confirm: opts.confirm,
          force: opts.force ? true : undefined,
        });
        return started(ctx, run, opts, 'started');
      }),
    );

  stack
    .command('cancel')
    .description("cancel the stack's active run: its running units are cancelled, nothing more launches")
    .argument('<name>', 'stack name or id')
    .option('--follow', FOLLOW)
    .option('--json', JSON_HELP)
    .action(
      action(async (ctx, name: string, opts: FollowOpts) => {
        const run = await ctx.api.cancelStackRun(name);
        return started(ctx, run, opts, 'cancel asked for');
      }),
    );

  stack
    .command('runs')
    .description("a stack's runs, newest first")
    .argument('<name>', 'stack name or id')
    .option('--json', 'print {items, next_cursor} as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: { json?: boolean }) => {
        const items = await api.allRuns(name);
        if (opts.json) return o.json({ items, next_cursor: null });
        if (items.length === 0) return o.print('No runs.');
        const { c } = o;
        const rows = items.map((r) => {
          const targets = r.steps.filter((s) => s.step !== 'not_needed');
          const done = targets.filter((s) => s.step === 'succeeded').length;
          return [
            c.bold(r.id),
            r.kind,
            stateWord(r.state, c),
            `${done}/${targets.length} succeeded`,
            r.actor,
            relativeTime(r.created_at),
            r.ended_at ? relativeTime(r.ended_at) : c.dim('-'),
          ];
        });
        for (const line of table(['RUN', 'KIND', 'STATE', 'UNITS', 'ACTOR', 'STARTED', 'ENDED'], rows, c))
          o.print(line);
      }),
    );
}
