// `lifeline check NAME`: runs the plan's check on the server and prints its verdict. On an unknown
// deployment the verdict resolves the state (up → ready, absent → torn_down, failed → failed).
import type { Command } from 'commander';
import type { LifelineEvent } from '../../domain/types.ts';
import { action, EXIT } from '../client/action.ts';
import { badge } from '../client/format.ts';
import { latestDeploymentSeq } from '../client/follow.ts';
import { followEvents } from '../client/sse.ts';

interface Opts {
  wait: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('check')
    .description("run the plan's check; resolves an unknown deployment from its verdict")
    .argument('<name>', 'deployment name or id')
    .option('--no-wait', 'return once the check is accepted, without waiting for its verdict')
    .option('--json', 'print the result as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: Opts) => {
        const dep = await api.getDeployment(name);
        const after = opts.wait ? await latestDeploymentSeq(api, dep.id) : 0;
        const accepted = await api.check(dep.id);
        if (!opts.wait) {
          if (opts.json) return o.json(accepted);
          o.print(`check of ${o.c.bold(dep.name)} accepted; its verdict will be a check_result event`);
          return EXIT.ok;
        }
        let result: LifelineEvent | null = null;
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        try {
          await followEvents({
            client: api,
            path: `/v1/deployments/${encodeURIComponent(dep.id)}/events/stream`,
            query: { type: 'check_result' },
            after,
            signal: ac.signal,
            onEvent: (e) => {
              if (e.type !== 'check_result') return;
              result = e;
              return 'stop';
            },
          });
        } finally {
          process.removeListener('SIGINT', stop);
        }
        const got = result as LifelineEvent | null;
        if (!got) {
          o.warn('stopped waiting; the check goes on on the server');
          return EXIT.interrupted;
        }
        const now = await api.getDeployment(dep.id);
        const data = got.data as { rc: number | null; verdict: string; actor: string };
        if (opts.json) return o.json({ ...data, seq: got.seq, at: got.at, deployment: now });
        const verdict =
          data.verdict === 'up'
            ? o.c.green('up')
            : data.verdict === 'absent'
              ? o.c.dim('absent')
              : o.c.red(data.verdict);
        o.print(
          `check of ${o.c.bold(now.name)}: ${verdict} (rc ${data.rc ?? '-'}); ${now.name} is ${badge(now.state, o.c)}`,
        );
        return EXIT.ok;
      }),
    );
}
