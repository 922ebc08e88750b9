// `lifeline cancel NAME`
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { stateWord } from '../client/format.ts';

export function register(program: Command): void {
  program
    .command('cancel')
    .description(
      'cancel the active attempt (it is cancelled once its process is confirmed gone), or the automatic retry waiting',
    )
    .argument('<name>', 'deployment name or id')
    .option('--json', 'print the attempt as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: { json?: boolean }) => {
        const att = await api.cancel(name);
        if (opts.json) return o.json(att);
        const what = `${att.kind} attempt #${att.number} of ${o.c.bold(name)} ${o.c.dim(`(${att.id})`)}`;
        if (att.state === 'cancelled') o.print(`cancelled ${what}`);
        // An ended attempt in the answer: no attempt was active, the retry waiting after it was cancelled.
        else if (att.state === 'failed' || att.state === 'succeeded') {
          o.print(`cancelled the automatic retry of ${o.c.bold(name)} that waited after ${what}`);
        } else {
          o.print(
            `cancel requested for ${what}; it is ${stateWord(att.state, o.c)} until its process is gone`,
          );
          o.print(o.c.dim(`follow it with: lifeline logs ${name} --follow`));
        }
      }),
    );
}
