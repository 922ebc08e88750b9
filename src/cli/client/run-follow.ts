// `stack deploy|teardown|cancel --follow`: a live table of a run's units, fed by the stack's event stream
// (`/v1/events/stream?stack=…`, SPEC §12.5).
//
// The stream only says *that* something moved; the table is read from the API (the run's steps, the
// stack's units) after each batch of events, so it always shows stored state, never a guess. The stream
// starts just before the run's own `accepted` transition, so a run that ends before the stream opens
// still ends the follow, and a reconnect resumes by Last-Event-ID without repeating or losing an event.
import type { Run } from '../../domain/stack-run.ts';
import type { Stack } from '../../domain/stack-types.ts';
import type { LifelineEvent } from '../../domain/types.ts';
import { EXIT, type Out } from './action.ts';
import type { ApiClient } from './api.ts';
import { badge, clock, stateWord, table, truncate } from './format.ts';
import { followEvents, type StreamStatus } from './sse.ts';

/** SPEC §12.5: 0 succeeded, 1 failed or cancelled, 3 unknown. */
export function runExitCode(state: string): number {
  if (state === 'succeeded') return EXIT.ok;
  if (state === 'failed' || state === 'cancelled') return EXIT.failed;
  return EXIT.unknown;
}

export const isRunActive = (state: string) => state === 'queued' || state === 'running';

/** A seq just before the run's `accepted` transition (0 when it cannot be found: replay everything). */
export async function seqBeforeRun(api: ApiClient, stackId: string, runId: string): Promise<number> {
  let after = 0;
  for (;;) {
    const page = await api.events({ stack: stackId, after, limit: 1000, type: ['state_transition'] });
    for (const e of page.items) {
      const d = e.data as { entity?: string; id?: string };
      if (d.entity === 'run' && d.id === runId) return e.seq - 1;
      after = Math.max(after, e.seq);
    }
    if (page.items.length < 1000) return 0;
  }
}

interface Row {
  key: string;
  deployment: string;
  state: string;
  step: string;
  attempt: string;
}

/** One row per unit of the run, in dependency order; `attempt` is the one this run launched. */
export function runRows(run: Run, stack: Stack | null): Row[] {
  const units = new Map((stack?.units ?? []).map((u) => [u.deployment_id, u] as const));
  return run.steps.map((s) => {
    const u = units.get(s.deployment_id);
    const a = u?.current_attempt;
    return {
      key: s.index !== null ? `${s.key}[${s.index}]` : s.key,
      deployment: s.deployment,
      state: u?.state ?? '-',
      step: s.step,
      attempt: s.attempt_id && a && a.id === s.attempt_id ? `#${a.number} ${a.kind} ${a.state}` : '-',
    };
  });
}

export function rowsTable(rows: Row[], o: Out): string[] {
  const { c } = o;
  return table(
    ['UNIT', 'DEPLOYMENT', 'STATE', 'STEP', 'ATTEMPT'],
    rows.map((r) => [r.key, c.bold(r.deployment), badge(r.state, c), stateWord(r.step, c), r.attempt]),
    c,
  );
}

export interface RunFollowOptions {
  api: ApiClient;
  o: Out;
  run: Run;
  json?: boolean;
  signal?: AbortSignal;
  reconnectTimeoutMs?: number;
}

/** Follows `run` to its end; returns the exit code. */
export async function followRun(opts: RunFollowOptions): Promise<number> {
  const { api, o, json } = opts;
  const { c } = o;
  let run = opts.run;
  let stack: Stack | null = null;
  const t0 = Date.parse(run.created_at) || Date.now();
  const live = o.tty && !json;
  let drawn = 0;
  let note = '';
  let last = new Map<string, string>();
  let lastRunState = '';

  const render = () => {
    if (json) return;
    const rows = runRows(run, stack);
    const head = `${run.kind} run ${c.bold(run.id)} of ${c.bold(run.stack)}: ${stateWord(run.state, c)} ${c.dim(clock(Date.now() - t0))}`;
    if (live) {
      const width = (o.out.columns || 80) - 1;
      const lines = [head, ...rowsTable(rows, o), ...(note ? [c.yellow(note)] : [])];
      // Back to the first line of the last drawing, rewrite it, clear what is left below.
      let text = drawn > 0 ? `\x1b[${drawn}F` : '';
      for (const l of lines) text += `\x1b[2K${truncate(l, width)}\n`;
      o.out.write(`${text}\x1b[J`);
      drawn = lines.length;
      return;
    }
    // Piped: one line per change.
    const stamp = c.dim(`[${clock(Date.now() - t0)}]`);
    if (run.state !== lastRunState) {
      o.print(`${stamp} run ${run.id} ${run.kind} ${run.state}`);
      lastRunState = run.state;
    }
    const next = new Map<string, string>();
    for (const r of rows) {
      const line = `${r.key} ${r.deployment} ${r.state} ${r.step} ${r.attempt}`;
      next.set(r.deployment, line);
      if (last.get(r.deployment) !== line) o.print(`${stamp} ${line}`);
    }
    last = next;
  };

  const load = async () => {
    const [r, s] = await Promise.all([api.getRun(run.id), api.getStack(run.stack_id)]);
    run = r;
    stack = s;
  };

  // One read at a time; events that arrive meanwhile ask for one more.
  let inflight: Promise<void> | null = null;
  let dirty = false;
  const refresh = () => {
    dirty = true;
    if (inflight) return;
    inflight = (async () => {
      while (dirty) {
        dirty = false;
        try {
          await load();
          render();
        } catch {
          // the stream's reconnect tells about a server that is gone; the next event reads again
        }
      }
      inflight = null;
    })();
  };

  // Both reads before anything is printed: once the table shows, only the stream's reconnect handles
  // a server that goes away.
  await load();
  const after = isRunActive(run.state) ? await seqBeforeRun(api, run.stack_id, run.id) : 0;
  render();

  if (isRunActive(run.state)) {
    let ended: string | null = null;
    const onEvent = (e: LifelineEvent): void | 'stop' => {
      const d = e.data as { entity?: string; id?: string; to?: string };
      if (
        e.type === 'state_transition' &&
        d.entity === 'run' &&
        d.id === run.id &&
        !isRunActive(String(d.to))
      ) {
        ended = String(d.to);
        return 'stop';
      }
      if (e.type !== 'log_line') refresh();
    };
    const onStatus = (s: StreamStatus) => {
      if (s.kind === 'disconnected') note = `connection to the server lost (${s.reason}); reconnecting…`;
      else if (s.kind === 'connected' && !s.first) note = '';
      else return;
      if (live) render();
      else o.warn(note || 'reconnected; resuming after the last event received');
    };
    const ac = new AbortController();
    const onSigint = () => ac.abort();
    process.once('SIGINT', onSigint);
    opts.signal?.addEventListener('abort', onSigint, { once: true });
    try {
      await followEvents({
        client: api,
        path: '/v1/events/stream',
        query: { stack: run.stack_id },
        after,
        onEvent,
        onStatus,
        signal: ac.signal,
        reconnectTimeoutMs: opts.reconnectTimeoutMs,
      });
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
    if (ended === null) {
      o.warn(`stopped following; the run goes on. See it with: lifeline stack show ${run.stack}`);
      return EXIT.interrupted;
    }
    while (inflight) await inflight;
    note = '';
    try {
      await load();
    } catch {
      run = { ...run, state: String(ended) as Run['state'] }; // the event is the run's end; the table is the last one read
    }
    render();
  }

  const code = runExitCode(run.state);
  if (json) {
    o.json(run);
    return code;
  }
  if (!live) for (const line of rowsTable(runRows(run, stack), o)) o.print(line);
  const count = (step: string) => run.steps.filter((s) => s.step === step).length;
  const summary = ['succeeded', 'failed', 'skipped', 'unknown', 'not_needed']
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`)
    .join(', ');
  o.print(`result: ${badge(run.state, c)}  run=${run.id}  units: ${summary || 'none'}`);
  if (run.state === 'unknown') {
    o.print(
      c.magenta(
        `A unit's outcome is unknown. Find out what happened, then \`lifeline check\` or \`lifeline resolve\` it; ` +
          `\`lifeline stack deploy ${run.stack}\` resumes.`,
      ),
    );
  }
  return code;
}
