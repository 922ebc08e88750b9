// `--follow`: a live view of one attempt, fed by the deployment's event stream (SPEC §3).
//
// Where to start: the caller passes a seq that is known to be before the attempt's first event (for a new
// attempt, the deployment's last transition read *before* the attempt was posted; for an existing one,
// the transition before the attempt's first). The stream replays from the table, so starting after the
// POST misses nothing, and the replay is short: only the events since that transition, of which the
// ones of other attempts are skipped.
//
// The follow ends on the attempt's `attempt_end` event (exactly one per attempt, SPEC §3), whether it is
// live or replayed, so an attempt that is already over when the follow starts still ends with its exit
// code. A server restart or a broken connection resumes with Last-Event-ID: no line is lost or repeated.
import type { Attempt, AttemptState, LifelineEvent, WaitingGate } from '../../domain/types.ts';
import { waitingText } from './gates.ts';
import type { ApiClient, Transition } from './api.ts';
import { EXIT, type Out } from './action.ts';
import { badge, between, clock, duration, retryText, stateWord, truncate } from './format.ts';
import { QueueWatch } from './queue-watch.ts';
import { followEvents, type StreamStatus } from './sse.ts';

export function exitCodeFor(state: AttemptState | string): number {
  if (state === 'succeeded') return EXIT.ok;
  if (state === 'failed' || state === 'cancelled') return EXIT.failed;
  return EXIT.unknown;
}

const ENDED: readonly string[] = ['succeeded', 'failed', 'cancelled', 'unknown'];

/**
 * A seq before the first event of `attemptId`: the deployment transition just before the attempt's first
 * one (the attempt's own `queued` event is written in the same transaction as that first transition, just
 * before it). 0 when there is none.
 */
export function seqBeforeAttempt(transitions: Transition[], attemptId: string): number {
  let before = 0;
  for (const t of transitions) {
    if (t.attempt_id === attemptId) return before;
    before = t.seq;
  }
  return before;
}

/** The seq of the deployment's last transition: every event of an attempt posted after this comes later. */
export function lastTransitionSeq(transitions: Transition[]): number {
  return transitions.reduce((m, t) => Math.max(m, t.seq), 0);
}

export interface FollowOptions {
  api: ApiClient;
  o: Out;
  deployment: { id: string; name: string };
  attempt: Attempt;
  /** Stream after this seq (see above). */
  after: number;
  /** NDJSON: every event of the attempt, then the final attempt. */
  json?: boolean;
  /** `logs --follow`: only the log lines on stdout; the outcome goes to stderr. */
  logsOnly?: boolean;
  signal?: AbortSignal;
  /** How often to show the spinner's next frame on a TTY. */
  tickMs?: number;
  reconnectTimeoutMs?: number;
}

export interface FollowResult {
  code: number;
  attempt: Attempt | null;
  state: string;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** The bottom line of the live view on a TTY; lines printed above it push it down. */
class StatusLine {
  private frame = 0;
  private shown = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly o: Out,
    private readonly enabled: boolean,
    private readonly render: () => string,
    tickMs: number,
  ) {
    if (enabled) {
      this.timer = setInterval(() => this.draw(), tickMs);
      this.timer.unref();
    }
  }

  /** Writes whole lines above the status line. */
  print(line: string): void {
    if (!this.enabled || this.stopped) {
      this.o.out.write(`${line}\n`);
      return;
    }
    this.clear();
    this.o.out.write(`${line}\n`);
    this.draw();
  }

  draw(): void {
    if (!this.enabled || this.stopped) return;
    this.frame = (this.frame + 1) % SPINNER.length;
    const text = `${this.o.c.cyan(SPINNER[this.frame])} ${this.render()}`;
    // One row only: a wrapped status line could not be cleared with \r.
    this.o.out.write(`\r\x1b[2K${truncate(text, (this.o.out.columns || 80) - 1)}`);
    this.shown = true;
  }

  clear(): void {
    if (this.enabled && this.shown) this.o.out.write('\r\x1b[2K');
    this.shown = false;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.clear();
  }
}

export async function followAttempt(opts: FollowOptions): Promise<FollowResult> {
  const { api, o, deployment, json, logsOnly } = opts;
  const c = o.c;
  let attempt = opts.attempt;
  let attemptState: string = attempt.state;
  let deploymentState: string = attempt.kind === 'deploy' ? 'deploying' : 'tearing_down';
  let end: { state: string; reason: string | null; rc: number | null; at: string; seq: number } | null = null;
  let connection: 'ok' | 'lost' = 'ok';
  // The gates holding it (SPEC §13), kept live from gate_waiting / gate_opened.
  let waiting: { gate: string; detail: Record<string, unknown> }[] = [...(attempt.waiting ?? [])];
  // Its place in a concurrency queue, which moves without an event of its own (queue-watch.ts).
  let queue: QueueWatch | null = null;
  const startedAt = Date.parse(attempt.queued_at) || Date.now();
  const t0 = Math.min(startedAt, Date.now());

  const live = o.tty && !json && !logsOnly;
  const status = new StatusLine(
    o,
    live,
    () => {
      const parts = [
        `${attempt.kind} ${c.bold(deployment.name)}`,
        `attempt #${attempt.number} ${stateWord(attemptState, c)}`,
        ...(waiting.length > 0 && attemptState === 'queued'
          ? [c.yellow(`waiting for ${waiting.map((w) => waitingText(w as WaitingGate)).join(' and ')}`)]
          : []),
        `deployment ${stateWord(deploymentState, c)}`,
        c.dim(clock(Date.now() - t0)),
      ];
      if (connection === 'lost') parts.push(c.yellow('reconnecting…'));
      return parts.join(c.dim(' · '));
    },
    opts.tickMs ?? 100,
  );

  const stamp = (at: string) => c.dim(`[${clock(Date.parse(at) - t0)}]`);
  const say = (at: string, text: string) => status.print(`${stamp(at)} ${text}`);

  const onStatus = (s: StreamStatus) => {
    if (s.kind === 'disconnected') {
      connection = 'lost';
      const msg = `connection to the server lost (${s.reason}); reconnecting…`;
      if (json || logsOnly) o.warn(msg);
      else status.print(c.yellow(msg));
    } else if (s.kind === 'connected' && !s.first) {
      connection = 'ok';
      const msg = 'reconnected; resuming after the last event received';
      if (json || logsOnly) o.warn(msg);
      else status.print(c.yellow(msg));
    }
  };

  const onEvent = (e: LifelineEvent): void | 'stop' => {
    if (e.attempt_id !== attempt.id) return;
    if (json && (!logsOnly || e.type === 'log_line')) o.out.write(`${JSON.stringify(e)}\n`);
    const d = e.data as Record<string, unknown>;
    switch (e.type) {
      case 'log_line': {
        const text = o.planText(String(d.text ?? ''));
        if (logsOnly && !json) o.out.write(`${text}\n`);
        else if (!json) say(e.at, `${c.dim('│')} ${d.stream === 'stderr' ? c.yellow(text) : text}`);
        break;
      }
      case 'state_transition': {
        const from = d.from as string | null;
        const to = d.to as string;
        const why = d.reason ? c.dim(` (${String(d.reason)})`) : '';
        if (d.entity === 'attempt') {
          attemptState = to;
          if (!json && !logsOnly) {
            const move = from ? `${stateWord(from, c)} → ${stateWord(to, c)}` : stateWord(to, c);
            say(e.at, `attempt #${attempt.number} ${move}${why}`);
          }
        } else {
          deploymentState = to;
          if (!json && !logsOnly) {
            const move = from ? `${stateWord(from, c)} → ${stateWord(to, c)}` : stateWord(to, c);
            say(e.at, `${deployment.name} ${move}${why}`);
          }
        }
        break;
      }
      case 'attempt_start':
        if (!json && !logsOnly) say(e.at, `process started (pid ${String(d.pid ?? '?')})`);
        break;
      case 'gate_waiting': {
        const w = { gate: String(d.gate), detail: (d.detail ?? {}) as Record<string, unknown> };
        waiting = [...waiting.filter((x) => x.gate !== w.gate), w];
        if (json || logsOnly) break;
        say(e.at, c.yellow(`waiting for ${waitingText(w as WaitingGate)}`));
        if (w.gate === 'approval') {
          say(e.at, c.dim(`approve with: lifeline approve ${attempt.id} --reason …`));
        }
        if (w.gate === 'concurrency' && typeof w.detail.key === 'string' && !queue) {
          queue = new QueueWatch({
            api,
            attemptId: attempt.id,
            key: w.detail.key,
            after: e.seq,
            onWaiting: movedUp,
          });
        }
        break;
      }
      case 'approval_granted':
        if (!json && !logsOnly) {
          const why = d.reason ? `: ${String(d.reason)}` : '';
          say(e.at, `approved by ${String(d.approver)}${why}`);
        }
        break;
      case 'gate_opened': {
        const had = waiting.some((x) => x.gate === d.gate);
        waiting = waiting.filter((x) => x.gate !== d.gate);
        if (d.gate === 'concurrency') void stopQueue();
        const waited = typeof d.waited_ms === 'number' ? d.waited_ms : 0;
        if (!json && !logsOnly && had) say(e.at, `${String(d.gate)} gate opened after ${duration(waited)}`);
        break;
      }
      case 'runner_event':
        if (!json && !logsOnly) say(e.at, `${c.blue('event')} ${JSON.stringify(d)}`);
        break;
      case 'attempt_end': {
        const state = String(d.state);
        if (!ENDED.includes(state)) break;
        end = {
          state,
          reason: (d.reason as string | null) ?? null,
          rc: typeof d.rc === 'number' ? d.rc : null,
          at: e.at,
          seq: e.seq,
        };
        attemptState = state;
        return 'stop';
      }
      default:
        break;
    }
  };

  /** The queue's answer: say the new place when it moved (the gate may have opened meanwhile). */
  function movedUp(now: WaitingGate[]): void {
    const mine = waiting.find((x) => x.gate === 'concurrency');
    const seen = now.find((x) => x.gate === 'concurrency');
    if (!mine || !seen || seen.detail.position === mine.detail.position) return;
    mine.detail = { ...mine.detail, position: seen.detail.position };
    say(new Date().toISOString(), c.yellow(`waiting for ${waitingText(seen)}`));
  }

  async function stopQueue(): Promise<void> {
    const q = queue;
    queue = null;
    await q?.stop();
  }

  // Ctrl-C stops following; the attempt itself goes on on the server.
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  opts.signal?.addEventListener('abort', onSigint, { once: true });

  if (!json && !logsOnly) {
    status.print(
      `${c.bold(attempt.kind === 'deploy' ? 'Deploying' : 'Tearing down')} ${c.bold(deployment.name)}: ` +
        `attempt #${attempt.number} ${c.dim(attempt.id)}`,
    );
  }
  status.draw();

  try {
    await followEvents({
      client: api,
      path: `/v1/deployments/${encodeURIComponent(deployment.id)}/events/stream`,
      after: opts.after,
      onEvent,
      onStatus,
      signal: ac.signal,
      reconnectTimeoutMs: opts.reconnectTimeoutMs,
    });
  } finally {
    await stopQueue();
    status.stop();
    process.removeListener('SIGINT', onSigint);
  }

  if (end === null) {
    const msg = `stopped following; the attempt goes on. Resume with: lifeline logs ${deployment.name} --follow`;
    o.warn(msg);
    return { code: EXIT.interrupted, attempt: null, state: attemptState };
  }
  const final = end as { state: string; reason: string | null; rc: number | null; at: string; seq: number };

  // The final record (times, rc); the event already says all that matters if the server is gone again.
  let finalAttempt: Attempt | null = null;
  try {
    finalAttempt = await api.getAttempt(attempt.id);
    attempt = finalAttempt;
  } catch {
    finalAttempt = null;
  }
  let depState = deploymentState;
  try {
    depState = (await api.getDeployment(deployment.id)).state;
  } catch {
    // keep what the events said
  }

  const retry = final.state === 'failed' ? await retryAfter(api, deployment.id, attempt.id, final.seq) : null;

  const code = exitCodeFor(final.state);
  if (json) {
    const scheduled = retry?.type === 'retry_scheduled' ? retry.data : null;
    o.out.write(
      `${JSON.stringify({ result: final.state, exit_code: code, attempt: finalAttempt, retry: scheduled })}\n`,
    );
  } else {
    const took = between(attempt.started_at ?? attempt.queued_at, attempt.ended_at ?? final.at);
    const k = logsOnly ? o.ce : c;
    const line = [
      `result: ${badge(final.state, k)}`,
      `rc=${final.rc ?? '-'}`,
      `reason=${final.reason ?? '-'}`,
      `duration=${duration(took)}`,
      `deployment=${stateWord(depState, k)}`,
    ].join('  ');
    const next = retry ? retryLine(retry, deployment.name) : null;
    if (logsOnly) {
      o.warn(line);
      if (next) o.warn(next);
    } else {
      status.print(line);
      if (next) status.print(c.yellow(next));
      if (final.state === 'unknown') {
        status.print(
          c.magenta(
            `The outcome of attempt #${attempt.number} is unknown. Find out what happened, then run ` +
              `\`lifeline check ${deployment.name}\` or ` +
              `\`lifeline resolve ${deployment.name} --state ready|failed|torn_down --reason …\`.`,
          ),
        );
      }
    }
  }
  return { code, attempt: finalAttempt, state: final.state };
}

type RetryEvent =
  | { type: 'retry_scheduled'; data: { number: number; of: number; at: string } }
  | { type: 'retry_exhausted'; data: { number: number; of: number } };

/**
 * What the attempt's failure did to the automatic retry: scheduled the next one, or used up the last.
 * Both are appended in the end's transaction, right after `attempt_end` (docs/reference/events.md).
 */
async function retryAfter(
  api: ApiClient,
  deploymentId: string,
  attemptId: string,
  endSeq: number,
): Promise<RetryEvent | null> {
  try {
    const page = await api.events({
      deployment: deploymentId,
      after: endSeq,
      limit: 10,
      type: ['retry_scheduled', 'retry_exhausted'],
    });
    const e = page.items.find((x) => x.attempt_id === attemptId);
    return e ? ({ type: e.type, data: e.data } as RetryEvent) : null;
  } catch {
    return null; // the result line stands on its own; `lifeline show` tells the retry too
  }
}

/** `retry 2/3 scheduled at 12:34:56 (in 28s); lifeline cancel web-1 cancels it`, or that none is left. */
export function retryLine(retry: RetryEvent, name: string, now = Date.now()): string {
  if (retry.type === 'retry_exhausted') {
    return `retry ${retry.data.number}/${retry.data.of} was the last: no automatic retry is left`;
  }
  const text = retryText(retry.data, now).replace(/^(retry \S+) at /, '$1 scheduled at ');
  return `${text}; \`lifeline cancel ${name}\` cancels it`;
}

/** The seq of the deployment's newest event (0 when it has none): its last transition, then what follows. */
export async function latestDeploymentSeq(api: ApiClient, deploymentId: string): Promise<number> {
  let after = lastTransitionSeq(await api.transitions(deploymentId));
  for (;;) {
    const page = await api.events({ deployment: deploymentId, after, limit: 1000 });
    for (const e of page.items) after = Math.max(after, e.seq);
    if (page.items.length < 1000) return after;
  }
}
