// An event-stream client on fetch() instead of EventSource: EventSource cannot send an Authorization header,
// and the streams need one when the server has tokens. Same behaviour otherwise: it parses text/event-stream
// (WHATWG rules: fields, comments, blank-line dispatch), follows `retry:`, and reconnects with
// Last-Event-ID, which the server honours over `after` (SPEC §3), so no event is missed or repeated.
import { authHeaders, noteResponse } from './api.js';

/** Incremental text/event-stream parser; onFrame({id, event, data}) per dispatched frame. */
export class SseParser {
  constructor(onFrame, onRetry = () => {}) {
    this.onFrame = onFrame;
    this.onRetry = onRetry;
    this.buf = '';
    this.data = [];
    this.event = '';
    this.id = null;
    this.sawCR = false;
  }

  push(text) {
    let s = text;
    // A CRLF split across chunks: the LF was already ended by the CR.
    if (this.sawCR && s.startsWith('\n')) s = s.slice(1);
    this.sawCR = false;
    this.buf += s;
    let m;
    const re = /\r\n|\r|\n/g;
    let start = 0;
    while ((m = re.exec(this.buf)) !== null) {
      if (m[0] === '\r' && m.index === this.buf.length - 1) {
        this.sawCR = true;
      }
      this.line(this.buf.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buf = this.buf.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) {
        this.onFrame({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
      }
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return; // comment (keepalive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id') {
      if (!value.includes('\0')) this.id = value;
    } else if (field === 'retry' && /^[0-9]+$/.test(value)) this.onRetry(Number(value));
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Opens a stream and keeps it open until close().
 * - path: e.g. /v1/events/stream; params: query (types, after for the first connection)
 * - onEvent(event): the parsed Lifeline event of each frame
 * - onStatus(status): 'connecting' | 'live' | 'reconnecting' | 'auth' | 'gone' | 'closed'
 * Events arrive in seq order, once each, across reconnects.
 */
export function openStream({ path, params = {}, onEvent, onStatus = () => {} }) {
  const stopped = new AbortController();
  let lastId = params.after !== undefined && params.after !== null ? String(params.after) : null;
  let retryMs = 1000;
  let failures = 0;
  let current = null;

  const run = async () => {
    while (!stopped.signal.aborted) {
      current = new AbortController();
      const abortCurrent = () => current.abort();
      stopped.signal.addEventListener('abort', abortCurrent);
      let watchdog = null;
      // The server sends a comment at least every 15 s: silence for longer means a dead connection.
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => current.abort(), 40_000);
      };
      try {
        onStatus(failures === 0 ? 'connecting' : 'reconnecting');
        const q = new URLSearchParams();
        for (const [k, v] of Object.entries(params)) {
          if (k !== 'after' && v !== undefined && v !== null && v !== '') q.set(k, String(v));
        }
        if (lastId !== null) q.set('after', lastId);
        const headers = { Accept: 'text/event-stream', ...authHeaders() };
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        const qs = q.toString();
        const res = await fetch(`${path}${qs ? `?${qs}` : ''}`, {
          headers,
          signal: current.signal,
          cache: 'no-store',
          credentials: 'omit',
        });
        noteResponse(res);
        if (res.status === 401 || res.status === 403) {
          onStatus('auth');
          return;
        }
        if (res.status === 404) {
          onStatus('gone');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
        failures = 0;
        onStatus('live');
        const parser = new SseParser(
          (frame) => {
            if (frame.id !== null) lastId = frame.id;
            let event;
            try {
              event = JSON.parse(frame.data);
            } catch {
              return;
            }
            try {
              onEvent(event);
            } catch (err) {
              console.error('event handler failed', err);
            }
          },
          (ms) => {
            retryMs = ms;
          },
        );
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        arm();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          arm();
          parser.push(value);
        }
      } catch {
        /* network error, abort or server restart: reconnect below */
      } finally {
        clearTimeout(watchdog);
        stopped.signal.removeEventListener('abort', abortCurrent);
      }
      if (stopped.signal.aborted) break;
      failures += 1;
      onStatus('reconnecting');
      const backoff = Math.min(retryMs * 2 ** Math.min(failures - 1, 4), 15_000);
      await sleep(backoff * (0.75 + Math.random() * 0.5), stopped.signal);
    }
  };
  void run();

  return {
    close() {
      if (stopped.signal.aborted) return;
      stopped.abort();
      onStatus('closed');
    },
    get lastEventId() {
      return lastId;
    },
  };
}
