// `lifeline approve ATTEMPT --reason TEXT` and `lifeline reject ATTEMPT --reason TEXT` (SPEC §13.3)
import type { Command } from 'commander';
import { action } from '../client/action.ts';
import { stateWord } from '../client/format.ts';

function answer(program: Command, name: 'approve' | 'reject', description: string): void {
  program
    .command(name)
    .description(description)
    .argument('<attempt>', 'attempt id (att_…)')
    .requiredOption('--reason <text>', 'why (recorded with the answer)')
    .option('--json', 'print the attempt as JSON')
    .action(
      action(async ({ api, o }, id: string, opts: { reason: string; json?: boolean }) => {
        const att = await api.answerApproval(id, name, opts.reason);
        if (opts.json) return o.json(att);
        const what = `${att.kind} attempt #${att.number} ${o.c.dim(`(${att.id})`)}`;
        if (name === 'reject') return o.print(`rejected ${what}: ${stateWord(att.state, o.c)}`);
        o.print(`approved ${what}: ${stateWord(att.state, o.c)}`);
      }),
    );
}

export function register(program: Command): void {
  answer(
    program,
    'approve',
    'approve an attempt waiting for approval (another token than the one that asked, of the plan’s role)',
  );
  answer(program, 'reject', 'reject an attempt waiting for approval: it is cancelled (reason rejected)');
}
