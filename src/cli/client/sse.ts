// Reading the event stream (SPEC §3) with fetch: a WHATWG-style `text/event-stream` parser, and a follower
// that reconnects with Last-Event-ID after any break (server restart, network hiccup, idle connection)
// so that the caller sees every event exactly once, in seq order.
import type { LifelineEvent } from '../../domain/types.ts';
import { ApiError, ConnectionError, describeNetworkError, problemFrom, type ApiClient } from './api.ts';

export interface SseMessage {
  /** The last event id seen so far (the `id:` field persists across messages, per the spec). */
  id: string;
  event: string;
  data: string;
}

/** Incremental parser: feed it text as it arrives, get whole messages back. */
export class SseParser {
  private buf = '';
  private skipLF = false;
  private data: string[] = [];
  private event = '';
  private lastId = '';
  /** The last `retry:` value, in ms. */
  retry: number | null = null;
  /** Number of comment lines seen (`: keepalive`). */
  comments = 0;

  feed(chunk: string): SseMessage[] {
    if (this.skipLF && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.skipLF = false;
    if (chunk === '') return [];
    this.buf += chunk;
    const lines = this.buf.split(/\r\n|\r|\n/);
    this.buf = lines.pop()!;
    // A CR at the very end may be the first half of a CRLF split across chunks.
    if (this.buf === '' && chunk.endsWith('\r')) this.skipLF = true;
    const out: SseMessage[] = [];
    for (const line of lines) {
      const msg = this.line(line);
      if (msg) out.push(msg);
    }
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.event = '';
        return null;
      }
      const msg = { id: this.lastId, event: this.event || 'message', data: this.data.join('\n') };
      this.data = [];
      this.event = '';
      return msg;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return null;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
      // ignored, per the spec
    }
    return null;
  }
}

export type StreamStatus =
  | { kind: 'connected'; first: boolean }
  | { kind: 'disconnected'; reason: string }
  | { kind: 'retrying'; reason: string; inMs: number };

export interface FollowEventsOptions {
  client: ApiClient;
  /** e.g. `/v1/events/stream` or `/v1/deployments/dep_…/events/stream` */
  path: string;
  query?: Record<string, string | undefined>;
  /** Start after this seq (exclusive). */
  after: number;
  /** Called for every event once, in seq order. Return 'stop' to end the follow. */
  onEvent(event: LifelineEvent): void | 'stop' | Promise<void | 'stop'>;
  onStatus?(status: StreamStatus): void;
  signal?: AbortSignal;
  /** Give up (ConnectionError) after this long without a working connection. Default 10 min. */
  reconnectTimeoutMs?: number;
  /** Reconnect when nothing at all (not even a keepalive) arrives for this long. Default 45 s. */
  idleTimeoutMs?: number;
  /** Upper bound of the wait between reconnects. Default 5 s. */
  maxBackoffMs?: number;
}

/** Wraps what onEvent threw, so that it is not mistaken for a broken connection. */
class CallbackError extends Error {
  constructor(readonly inner: unknown) {
    super('onEvent failed');
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Follows a stream until onEvent says 'stop' (resolves with the last seq), the signal aborts (resolves),
 * the server refuses the stream with a 4xx (rejects with ApiError), or no connection could be made for
 * reconnectTimeoutMs (rejects with ConnectionError). Events with a seq at or below the last one seen are
 * dropped, so a resumed stream never repeats anything.
 */
export async function followEvents(opts: FollowEventsOptions): Promise<number> {
  const reconnectTimeoutMs = opts.reconnectTimeoutMs ?? 10 * 60_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 45_000;
  const maxBackoffMs = opts.maxBackoffMs ?? 5_000;
  let last = opts.after;
  let retryMs = 1_000;
  let failures = 0;
  let downSince: number | null = null;
  let connectedOnce = false;

  const fail = async (reason: string): Promise<void> => {
    failures++;
    if (downSince === null) {
      downSince = Date.now();
      opts.onStatus?.({ kind: 'disconnected', reason });
    }
    if (Date.now() - downSince > reconnectTimeoutMs) {
      throw new ConnectionError(opts.client.baseUrl, `${reason}; gave up reconnecting`);
    }
    const inMs = Math.min(maxBackoffMs, Math.max(100, retryMs) * 2 ** Math.min(failures - 1, 6));
    opts.onStatus?.({ kind: 'retrying', reason, inMs });
    await sleep(inMs, opts.signal);
  };

  while (!opts.signal?.aborted) {
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    let idle: NodeJS.Timeout | null = null;
    const armIdle = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => ac.abort(new Error('idle')), idleTimeoutMs);
    };
    try {
      let res: Response;
      armIdle();
      try {
        const headers = opts.client.headers({ accept: 'text/event-stream' });
        if (connectedOnce) headers['last-event-id'] = String(last);
        res = await fetch(opts.client.url(opts.path, { ...opts.query, after: String(last) }), {
          headers,
          signal: ac.signal,
        });
      } catch (err) {
        if (opts.signal?.aborted) break;
        await fail(describeNetworkError(err));
        continue;
      }
      if (!res.ok) {
        const problem = await problemFrom(res);
        if (res.status >= 500 || res.status === 429 || res.status === 408) {
          await fail(`${problem.code}: ${problem.detail}`);
          continue;
        }
        throw problem;
      }
      const type = res.headers.get('content-type') ?? '';
      if (!type.startsWith('text/event-stream') || !res.body) {
        throw new ApiError(res.status, 'BAD_RESPONSE', `expected an event stream, got ${type || 'nothing'}`);
      }
      opts.onStatus?.({ kind: 'connected', first: !connectedOnce });
      connectedOnce = true;
      downSince = null;
      failures = 0;

      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      let reason = 'the stream ended';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          armIdle();
          const messages = parser.feed(decoder.decode(value, { stream: true }));
          if (parser.retry !== null) retryMs = parser.retry;
          for (const m of messages) {
            let event: LifelineEvent;
            try {
              event = JSON.parse(m.data) as LifelineEvent;
            } catch {
              continue; // not one of ours
            }
            if (typeof event?.seq !== 'number' || event.seq <= last) continue;
            last = event.seq;
            let verdict: void | 'stop';
            try {
              verdict = await opts.onEvent(event);
            } catch (err) {
              throw new CallbackError(err);
            }
            if (verdict === 'stop') {
              ac.abort();
              return last;
            }
          }
        }
      } catch (err) {
        if (opts.signal?.aborted) break;
        if (err instanceof CallbackError) throw err.inner;
        const cause = ac.signal.reason as Error | undefined;
        reason = cause?.message === 'idle' ? 'no data for a while' : describeNetworkError(err);
      }
      if (opts.signal?.aborted) break;
      // A clean end (the server shut down) or a break: resume from the last seq after a short wait.
      await fail(reason);
    } finally {
      if (idle) clearTimeout(idle);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
  return last;
}
