// A small SSE reader over node:http for stream tests: frames and comments as they arrive, parsed per the
// WHATWG rules that matter here (fields, comments, blank-line dispatch).
import http from 'node:http';
import type { LifelineEvent } from '../../src/domain/types.ts';

export interface SseFrame {
  id?: string;
  event?: string;
  data: string;
  retry?: number;
}

export class SseReader {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  ended = false;
  error: unknown = null;
  private buf = '';
  private cur: { id?: string; event?: string; data: string[]; retry?: number } = { data: [] };
  private waiters = new Set<() => void>();
  readonly done: Promise<void>;

  constructor(
    readonly response: http.IncomingMessage,
    private readonly request: http.ClientRequest,
    opts: { paused?: Promise<void> } = {},
  ) {
    response.setEncoding('utf8');
    if (opts.paused) {
      // Not reading at all: the socket buffers fill and the server has to wait for 'drain'.
      response.pause();
      void opts.paused.then(() => response.resume());
    }
    this.done = new Promise((resolve) => {
      response.on('data', (chunk: string) => this.feed(chunk));
      const finish = (err?: unknown) => {
        if (this.ended) return;
        if (err && !this.aborted) this.error = err;
        this.ended = true;
        this.notify();
        resolve();
      };
      response.on('end', () => finish());
      response.on('error', finish);
      response.on('close', () =>
        finish(response.complete ? undefined : new Error('connection closed early')),
      );
    });
  }

  private aborted = false;

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  header(name: string): string | undefined {
    const v = this.response.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  /** Events (frames with an event name) parsed as Lifeline events. */
  get events(): LifelineEvent[] {
    return this.frames.filter((f) => f.event !== undefined).map((f) => JSON.parse(f.data) as LifelineEvent);
  }

  get seqs(): number[] {
    return this.events.map((e) => e.seq);
  }

  private feed(text: string): void {
    this.buf += text;
    let nl: number;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf.startsWith('\r\n', nl) ? 2 : 1));
      this.line(line);
    }
    this.notify();
  }

  private line(line: string): void {
    if (line === '') {
      const { id, event, data, retry } = this.cur;
      if (data.length > 0 || retry !== undefined || id !== undefined) {
        this.frames.push({ id, event, data: data.join('\n'), retry });
      }
      this.cur = { data: [] };
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'id') this.cur.id = value;
    else if (field === 'event') this.cur.event = value;
    else if (field === 'data') this.cur.data.push(value);
    else if (field === 'retry') this.cur.retry = Number(value);
  }

  private notify(): void {
    for (const w of this.waiters) w();
  }

  /** Resolves once `pred` holds (checked on every chunk), rejects after `timeoutMs`. */
  until(pred: (r: SseReader) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    if (pred(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (pred(this)) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        } else if (this.ended) {
          clearTimeout(timer);
          this.waiters.delete(check);
          reject(new Error(`stream ended before ${what} (got seqs ${this.seqs.slice(-5).join(',')})`));
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what} (last seqs ${this.seqs.slice(-5).join(',')})`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Waits until the stream has delivered an event with seq >= `seq`. */
  untilSeq(seq: number, timeoutMs?: number): Promise<void> {
    return this.until((r) => r.events.some((e) => e.seq >= seq), `seq ${seq}`, timeoutMs);
  }

  /** Drops the connection, as a client going away would. */
  close(): void {
    this.aborted = true;
    this.request.destroy();
  }
}

/** Opens a stream on its own connection (no pooling); resolves when the response headers have arrived. */
export function openSse(
  url: string,
  opts: { headers?: Record<string, string>; paused?: Promise<void> } = {},
): Promise<SseReader> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      url,
      { agent: false, headers: { accept: 'text/event-stream', ...opts.headers } },
      (res) => resolve(new SseReader(res, req, { paused: opts.paused })),
    );
    req.on('error', reject);
  });
}

/** A whole (non-stream) response, for the error cases. */
export function getOnce(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }),
      );
    });
    req.on('error', reject);
  });
}

export function contiguous(seqs: number[], from = 1): boolean {
  return seqs.every((s, i) => s === from + i);
}
