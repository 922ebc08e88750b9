// `lifeline logs NAME [--attempt N] [--follow]`: the output of the current (or Nth) attempt.
import { InvalidArgumentError, type Command } from 'commander';
import type { Attempt } from '../../domain/types.ts';
import { action, EXIT } from '../client/action.ts';
import { ApiError } from '../client/api.ts';
import { followAttempt, seqBeforeAttempt } from '../client/follow.ts';

interface Opts {
  attempt?: number;
  follow?: boolean;
  json?: boolean;
  tail?: number;
}

export function positiveInt(value: string): number {
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('expected a number from 1 up');
  return Number(value);
}

export function register(program: Command): void {
  program
    .command('logs')
    .description(
      "print an attempt's output (stdout and stderr as written); --follow streams it until the attempt ends",
    )
    .argument('<name>', 'deployment name or id')
    .option('--attempt <n>', 'attempt number (default: the current attempt)', positiveInt)
    .option(
      '--follow',
      'stream new lines until the attempt ends; exit 0 succeeded, 1 failed or cancelled, 3 unknown',
    )
    .option('--json', 'print JSON (with --follow: log_line events as JSON lines, then the result)')
    .option('--tail <n>', 'only the last n lines (without --follow)', positiveInt)
    .action(
      action(async ({ api, o }, name: string, opts: Opts) => {
        const dep = await api.getDeployment(name);
        let attempt: Attempt | undefined;
        if (opts.attempt !== undefined) {
          attempt = (await api.allAttempts(dep.id)).find((a) => a.number === opts.attempt);
          if (!attempt) throw new ApiError(404, 'NOT_FOUND', `${dep.name} has no attempt #${opts.attempt}`);
        } else if (dep.current_attempt) {
          attempt = await api.getAttempt(dep.current_attempt.id);
        } else {
          attempt = (await api.listAttempts(dep.id, { limit: 1 })).items[0];
          if (!attempt) throw new ApiError(404, 'NOT_FOUND', `${dep.name} has no attempts yet`);
        }

        if (opts.follow) {
          const after = seqBeforeAttempt(await api.transitions(dep.id), attempt.id);
          const res = await followAttempt({
            api,
            o,
            deployment: dep,
            attempt,
            after,
            json: opts.json,
            logsOnly: true,
          });
          return res.code;
        }

        // The server answers in pages of at most a few MiB: read on until a page comes back empty.
        let { text, nextOffset } = await api.attemptLog(attempt.id, 0, opts.tail);
        for (let page = text; opts.tail === undefined && page !== '';) {
          const next = await api.attemptLog(attempt.id, nextOffset);
          if (next.nextOffset <= nextOffset) break;
          page = next.text;
          text += page;
          nextOffset = next.nextOffset;
        }
        if (opts.json) {
          return o.json({
            attempt_id: attempt.id,
            number: attempt.number,
            kind: attempt.kind,
            state: attempt.state,
            text,
            lines: text === '' ? [] : text.replace(/\n$/, '').split('\n'),
            next_offset: nextOffset,
          });
        }
        o.out.write(o.planText(text));
        if (text !== '' && !text.endsWith('\n')) o.out.write('\n');
        return EXIT.ok;
      }),
    );
}
