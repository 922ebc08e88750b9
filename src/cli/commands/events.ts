// `lifeline events [--deployment NAME] [--after SEQ] [--follow]`: the event log, paged or streamed.
import { InvalidArgumentError, type Command } from 'commander';
import { EVENT_TYPES, type EventType, type LifelineEvent } from '../../domain/types.ts';
import { action, EXIT, type Out } from '../client/action.ts';
import { ApiError, type ApiClient } from '../client/api.ts';
import { pad, stateWord, table, timestamp, width, type Colors } from '../client/format.ts';
import { followEvents } from '../client/sse.ts';

interface Opts {
  deployment?: string;
  after?: number;
  type?: EventType[];
  limit?: number;
  follow?: boolean;
  json?: boolean;
}

function nonNegativeInt(value: string): number {
  if (!/^[0-9]{1,15}$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

function positiveInt(value: string): number {
  const n = nonNegativeInt(value);
  if (n < 1) throw new InvalidArgumentError('expected a number from 1 up');
  return n;
}

function eventTypes(value: string, previous: EventType[] = []): EventType[] {
  const out = [...previous];
  for (const t of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (!(EVENT_TYPES as readonly string[]).includes(t)) {
      throw new InvalidArgumentError(`unknown event type "${t}"; one of ${EVENT_TYPES.join(', ')}`);
    }
    if (!out.includes(t as EventType)) out.push(t as EventType);
  }
  return out;
}

/** Names for deployment ids and numbers for attempt ids, looked up once each. */
class Names {
  private deployments = new Map<string, string>();
  private attempts = new Map<string, number | null>();

  constructor(private readonly api: ApiClient) {}

  learn(e: LifelineEvent): void {
    const d = e.data as Record<string, unknown>;
    if (
      e.deployment_id &&
      (e.type === 'deployment_created' || e.type === 'deployment_deleted') &&
      typeof d.name === 'string'
    ) {
      this.deployments.set(e.deployment_id, d.name);
    }
    if (
      e.attempt_id &&
      (e.type === 'attempt_start' || e.type === 'attempt_end') &&
      typeof d.number === 'number'
    ) {
      this.attempts.set(e.attempt_id, d.number);
    }
  }

  async deployment(id: string | null): Promise<string> {
    if (!id) return '-';
    let name = this.deployments.get(id);
    if (name === undefined) {
      try {
        name = (await this.api.getDeployment(id)).name;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        name = id; // deleted, or not visible
      }
      this.deployments.set(id, name);
    }
    return name;
  }

  async attempt(id: string | null): Promise<string> {
    if (!id) return '';
    let n = this.attempts.get(id);
    if (n === undefined) {
      try {
        n = (await this.api.getAttempt(id)).number;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        n = null;
      }
      this.attempts.set(id, n);
    }
    return n === null ? id : `#${n}`;
  }
}

/** One line of what an event says. */
async function detail(e: LifelineEvent, names: Names, c: Colors): Promise<string> {
  const d = e.data as Record<string, unknown>;
  const s = (v: unknown) => (v === null || v === undefined ? '-' : String(v));
  switch (e.type) {
    case 'deployment_created':
      return `created with plan ${s(d.plan)} params=${JSON.stringify(d.params ?? {})} labels=${JSON.stringify(d.labels ?? {})}`;
    case 'deployment_deleted':
      return `deleted by ${s(d.actor)}`;
    case 'state_transition': {
      const move = `${d.from ? `${stateWord(String(d.from), c)} → ` : ''}${stateWord(s(d.to), c)}`;
      const who = `${s(d.trigger)}${d.reason ? `, ${s(d.reason)}` : ''}, by ${s(d.actor)}`;
      const subject = d.entity === 'attempt' ? `attempt ${await names.attempt(e.attempt_id)} ` : '';
      return `${subject}${move} ${c.dim(`(${who})`)}`;
    }
    case 'attempt_start':
      return `attempt #${s(d.number)} ${s(d.kind)} started (pid ${s(d.pid)})`;
    case 'attempt_end':
      return (
        `attempt #${s(d.number)} ${s(d.kind)} ended ${stateWord(s(d.state), c)} rc=${s(d.rc)} reason=${s(d.reason)}` +
        (d.recovered ? ' (recovered)' : '')
      );
    case 'log_line':
      return `${c.dim(`${await names.attempt(e.attempt_id)} ${s(d.stream)}│`)} ${s(d.text)}`;
    case 'runner_event':
      return `${await names.attempt(e.attempt_id)} ${JSON.stringify(d)}`;
    case 'check_result':
      return `check: ${s(d.verdict)} (rc ${s(d.rc)}) by ${s(d.actor)}`;
    default:
      return JSON.stringify(d);
  }
}

async function row(e: LifelineEvent, names: Names, c: Colors): Promise<string[]> {
  names.learn(e);
  return [
    String(e.seq),
    timestamp(e.at),
    e.type,
    await names.deployment(e.deployment_id),
    await detail(e, names, c),
  ];
}

const HEAD = ['SEQ', 'AT', 'TYPE', 'DEPLOYMENT', 'DETAIL'];

/**
 * Column widths for a stream, fixed before its first line: seq, local time, the longest event type, and
 * the longest deployment name there is now (a longer one created later is cut with `…`).
 */
export function followWidths(names: readonly string[]): number[] {
  return [
    8,
    timestamp(new Date().toISOString()).length,
    Math.max(...EVENT_TYPES.map((t) => t.length)),
    Math.max(HEAD[3].length, ...names.map((n) => n.length)),
  ];
}

/** One streamed line: the first four cells padded (or cut) to `widths`, the detail as it is. */
export function followLine(cells: string[], widths: readonly number[]): string {
  return cells
    .map((cell, i) => {
      if (i >= widths.length) return cell;
      const cut = width(cell) > widths[i] ? `${[...cell].slice(0, widths[i] - 1).join('')}…` : cell;
      return pad(cut, widths[i]);
    })
    .join('  ');
}

async function follow(api: ApiClient, o: Out, opts: Opts, deploymentId: string | undefined): Promise<number> {
  const names = new Names(api);
  let widths: number[] = [];
  if (!opts.json) {
    const known = opts.deployment
      ? [await names.deployment(deploymentId ?? null)]
      : (await api.allDeployments({})).map((d) => d.name);
    widths = followWidths(known);
  }
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (!opts.json)
    o.print(
      followLine(
        HEAD.map((h) => o.c.bold(o.c.dim(h))),
        widths,
      ),
    );
  try {
    await followEvents({
      client: api,
      path: '/v1/events/stream',
      query: { deployment: deploymentId, type: opts.type?.join(',') },
      after: opts.after ?? 0,
      signal: ac.signal,
      onStatus: (s) => {
        if (s.kind === 'disconnected') o.warn(`connection to the server lost (${s.reason}); reconnecting…`);
        else if (s.kind === 'connected' && !s.first) o.warn('reconnected');
      },
      onEvent: async (e) => {
        if (opts.json) o.out.write(`${JSON.stringify(e)}\n`);
        else {
          o.print(followLine(await row(e, names, o.c), widths));
        }
      },
    });
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return EXIT.ok;
}

export function register(program: Command): void {
  program
    .command('events')
    .description('print the event log (or one deployment’s); --follow streams new events as they happen')
    .option('--deployment <name>', 'only the events of this deployment (name or id)')
    .option('--after <seq>', 'only events with a larger seq (default 0: from the start)', nonNegativeInt)
    .option(
      '--type <types>',
      `only these types, comma-separated or repeated: ${EVENT_TYPES.join(', ')}`,
      eventTypes,
    )
    .option('--limit <n>', 'print at most n events (without --follow)', positiveInt)
    .option('--follow', 'after the history, stream new events until interrupted')
    .option('--json', 'print {items, next_after} as JSON (with --follow: one event per line)')
    .action(
      action(async ({ api, o }, opts: Opts) => {
        // A name is resolved once: the stream and the pages then filter by id.
        const deploymentId = opts.deployment ? (await api.getDeployment(opts.deployment)).id : undefined;
        if (opts.follow) return follow(api, o, opts, deploymentId);

        const items: LifelineEvent[] = [];
        let after = opts.after ?? 0;
        const max = opts.limit ?? Infinity;
        for (;;) {
          const want = Math.min(1000, max - items.length);
          const page = await api.events({ after, limit: want, deployment: deploymentId, type: opts.type });
          items.push(...page.items);
          after = page.items.length > 0 ? page.items[page.items.length - 1].seq : after;
          if (page.items.length < want || items.length >= max) break;
        }
        if (opts.json) return o.json({ items, next_after: after });
        if (items.length === 0) {
          o.print('No events.');
          return EXIT.ok;
        }
        const names = new Names(api);
        const rows: string[][] = [];
        for (const e of items) rows.push(await row(e, names, o.c));
        for (const line of table(HEAD, rows, o.c)) o.print(line);
        return EXIT.ok;
      }),
    );
}
