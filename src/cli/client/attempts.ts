// Starting an attempt (deploy, teardown) and, with --follow, watching it to its end.
import type { Command } from 'commander';
import type { Attempt, Deployment } from '../../domain/types.ts';
import { EXIT, type Ctx } from './action.ts';
import { followAttempt, lastTransitionSeq } from './follow.ts';

/** What deploy and teardown say alike: the exit codes of --follow, and its two options. */
export function attemptCommand(cmd: Command, what: string): Command {
  return cmd
    .description(`${what}; with --follow, watch it and exit 0 succeeded, 1 failed or cancelled, 3 unknown`)
    .option('--follow', 'show the attempt live until it ends; the exit code tells the outcome')
    .option('--json', 'print the attempt as JSON (with --follow: its events as JSON lines, then the result)');
}

export interface StartOptions {
  follow?: boolean;
  json?: boolean;
}

/**
 * Reads the deployment (and, to follow, where its event history ends now), posts the attempt, then prints
 * it or follows it. The transitions are read before the POST: every event of the new attempt has a
 * larger seq, so streaming after that seq misses nothing even if the attempt is over before the stream
 * opens.
 */
export async function startAttempt(
  ctx: Ctx,
  ref: string,
  post: (dep: Deployment) => Promise<Attempt>,
  opts: StartOptions,
): Promise<number> {
  const { api, o } = ctx;
  const dep = await api.getDeployment(ref);
  const after = opts.follow ? lastTransitionSeq(await api.transitions(dep.id)) : 0;
  const attempt = await post(dep);
  if (!opts.follow) {
    if (opts.json) o.json(attempt);
    else {
      o.print(
        `${attempt.kind} attempt #${attempt.number} of ${o.c.bold(dep.name)} ${attempt.state} ${o.c.dim(`(${attempt.id})`)}`,
      );
      o.print(o.c.dim(`follow it with: lifeline logs ${dep.name} --follow`));
    }
    return EXIT.ok;
  }
  const res = await followAttempt({ api, o, deployment: dep, attempt, after, json: opts.json });
  return res.code;
}
