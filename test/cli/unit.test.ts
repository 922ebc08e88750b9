// The CLI's pure parts: param coercion, the SSE parser, the follower against a fake stream, formatting,
// and runCli (the program in-process) against a fake server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { InvalidArgumentError } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient, ApiError, ConnectionError, problemFrom } from '../../src/cli/client/api.ts';
import { errorLines, makeOut } from '../../src/cli/client/action.ts';
import { exitCodeFor, lastTransitionSeq, seqBeforeAttempt } from '../../src/cli/client/follow.ts';
import {
  colorEnabled,
  colors,
  duration,
  relativeTime,
  stripAnsi,
  table,
  truncate,
} from '../../src/cli/client/format.ts';
import {
  coerceParams,
  coerceValue,
  collectPair,
  pairsToObject,
  schemaTypes,
} from '../../src/cli/client/params.ts';
import { followEvents, SseParser } from '../../src/cli/client/sse.ts';
import type { Transition } from '../../src/cli/client/api.ts';
import { runCli } from '../../src/cli/run.ts';
import { VERSION } from '../../src/version.ts';

describe('--param parsing and coercion', () => {
  it('accumulates k=v pairs; the value may contain =; no = or an empty key is a usage error', () => {
    let acc = collectPair('a=1');
    acc = collectPair('b=x=y', acc);
    acc = collectPair('a=2', acc);
    expect(acc).toEqual([
      ['a', '1'],
      ['b', 'x=y'],
      ['a', '2'],
    ]);
    expect(pairsToObject(acc)).toEqual({ a: '2', b: 'x=y' });
    expect(collectPair('empty=')).toEqual([['empty', '']]);
    expect(() => collectPair('novalue')).toThrow(InvalidArgumentError);
    expect(() => collectPair('=1')).toThrow(InvalidArgumentError);
  });

  const schema = {
    type: 'object',
    properties: {
      replicas: { type: 'integer', minimum: 1 },
      ratio: { type: 'number' },
      debug: { type: 'boolean' },
      tags: { type: 'array' },
      extra: { type: ['object', 'null'] },
      name: { type: 'string' },
      size: { enum: [1, 2, 4] },
      mode: { anyOf: [{ type: 'boolean' }, { const: 'auto' }] },
    },
  };

  it('types each value by its property schema', () => {
    expect(
      coerceParams(
        [
          ['replicas', '3'],
          ['ratio', '0.25'],
          ['debug', 'false'],
          ['tags', '["a",1]'],
          ['extra', 'null'],
          ['name', '007'],
          ['size', '4'],
          ['mode', 'true'],
        ],
        schema,
      ),
    ).toEqual({
      replicas: 3,
      ratio: 0.25,
      debug: false,
      tags: ['a', 1],
      extra: null,
      name: '007',
      size: 4,
      mode: true,
    });
    expect(coerceParams([['extra', '{"k":{"n":1}}']], schema)).toEqual({ extra: { k: { n: 1 } } });
    expect(coerceParams([['mode', 'auto']], schema)).toEqual({ mode: 'auto' });
    expect(coerceParams([['ratio', '7']], schema)).toEqual({ ratio: 7 });
    expect(coerceParams([['ratio', '1e3']], schema)).toEqual({ ratio: 1000 });
  });

  it('leaves what does not fit, and unknown properties, as strings for the server to judge', () => {
    expect(coerceParams([['replicas', 'three']], schema)).toEqual({ replicas: 'three' });
    expect(coerceParams([['replicas', '2.5']], schema)).toEqual({ replicas: '2.5' });
    expect(coerceParams([['replicas', '007x']], schema)).toEqual({ replicas: '007x' });
    expect(coerceParams([['debug', 'yes']], schema)).toEqual({ debug: 'yes' });
    expect(coerceParams([['tags', '[broken']], schema)).toEqual({ tags: '[broken' });
    expect(coerceParams([['tags', '{"an":"object"}']], schema)).toEqual({ tags: '{"an":"object"}' });
    expect(coerceParams([['colour', '3']], schema)).toEqual({ colour: '3' });
    expect(coerceParams([['anything', 'true']], undefined)).toEqual({ anything: 'true' });
  });

  it('uses additionalProperties for undeclared keys when it is a schema', () => {
    expect(coerceParams([['n', '5']], { type: 'object', additionalProperties: { type: 'integer' } })).toEqual(
      { n: 5 },
    );
    expect(coerceParams([['n', '5']], { type: 'object', additionalProperties: true })).toEqual({ n: '5' });
  });

  it('schemaTypes reads type, type arrays, enum, const and anyOf/oneOf', () => {
    expect([...schemaTypes({ type: ['integer', 'null'] })].sort()).toEqual(['integer', 'null']);
    expect([...schemaTypes({ enum: ['a', 1.5, null] })].sort()).toEqual(['null', 'number', 'string']);
    expect([...schemaTypes({ oneOf: [{ type: 'string' }, { type: 'array' }] })].sort()).toEqual([
      'array',
      'string',
    ]);
    expect(schemaTypes({}).size).toBe(0);
    expect(coerceValue('12', { type: 'string' })).toBe('12');
  });
});

describe('SseParser', () => {
  it('parses frames, comments, retry, and keeps the last id', () => {
    const p = new SseParser();
    const msgs = p.feed('retry: 1000\n\n: keepalive\n\nid: 7\nevent: log_line\ndata: {"seq":7}\n\n');
    expect(p.retry).toBe(1000);
    expect(p.comments).toBe(1);
    expect(msgs).toEqual([{ id: '7', event: 'log_line', data: '{"seq":7}' }]);
  });

  it('handles frames split anywhere, CRLF split across chunks, CR-only lines and multi-line data', () => {
    const text = 'id: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\nid: 2\rdata:z\r\rdata: w\n\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const p = new SseParser();
      const msgs = [...p.feed(text.slice(0, cut)), ...p.feed(text.slice(cut))];
      expect(msgs, `cut at ${cut}`).toEqual([
        { id: '1', event: 'a', data: 'x\ny' },
        { id: '2', event: 'message', data: 'z' },
        { id: '2', event: 'message', data: 'w' },
      ]);
    }
    const p = new SseParser();
    const bytes = [...'data: é\n\n'];
    const out = bytes.flatMap((ch) => p.feed(ch));
    expect(out).toEqual([{ id: '', event: 'message', data: 'é' }]);
  });
});

describe('followEvents against a fake stream', () => {
  let srv: http.Server | null = null;
  afterEach(() => {
    srv?.closeAllConnections();
    srv?.close();
    srv = null;
  });

  const frame = (seq: number) =>
    `id: ${seq}\nevent: log_line\ndata: ${JSON.stringify({ seq, type: 'log_line', at: '', deployment_id: 'dep_1', attempt_id: 'att_1', data: { text: `line ${seq}` } })}\n\n`;

  async function listen(handler: http.RequestListener): Promise<ApiClient> {
    srv = http.createServer(handler);
    await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', r));
    return new ApiClient({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, token: 't0k' });
  }

  it('resumes with Last-Event-ID after the stream breaks, dropping repeats, until told to stop', async () => {
    const requests: { lastEventId?: string; after: string | null; auth?: string }[] = [];
    const client = await listen((req, res) => {
      const url = new URL(req.url!, 'http://x');
      requests.push({
        lastEventId: req.headers['last-event-id'] as string | undefined,
        after: url.searchParams.get('after'),
        auth: req.headers.authorization,
      });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 10\n\n');
      if (requests.length === 1) {
        res.write(frame(3) + frame(4));
        res.end(); // the server "restarts"
      } else {
        // replays one already seen, then goes on
        res.write(frame(4) + frame(5) + frame(6));
      }
    });
    const seen: number[] = [];
    const statuses: string[] = [];
    const last = await followEvents({
      client,
      path: '/v1/events/stream',
      after: 2,
      onEvent: (e) => {
        seen.push(e.seq);
        return e.seq === 6 ? 'stop' : undefined;
      },
      onStatus: (s) => statuses.push(s.kind),
    });
    expect(last).toBe(6);
    expect(seen).toEqual([3, 4, 5, 6]);
    expect(requests[0]).toEqual({ lastEventId: undefined, after: '2', auth: 'Bearer t0k' });
    expect(requests[1]).toMatchObject({ lastEventId: '4', after: '4' });
    expect(statuses).toEqual(['connected', 'disconnected', 'retrying', 'connected']);
  });

  it('retries 5xx, fails on a 4xx problem, and gives up after the reconnect timeout', async () => {
    let n = 0;
    const client = await listen((_req, res) => {
      n++;
      if (n === 1) {
        res.writeHead(503, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ code: 'STORE_UNAVAILABLE', detail: 'busy', status: 503 }));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ code: 'NOT_FOUND', detail: 'deployment x not found', status: 404 }));
    });
    await expect(
      followEvents({ client, path: '/s', after: 0, onEvent: () => undefined, maxBackoffMs: 20 }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND', status: 404 });
    expect(n).toBe(2);

    const nowhere = new ApiClient({ url: 'http://127.0.0.1:1' });
    await expect(
      followEvents({
        client: nowhere,
        path: '/s',
        after: 0,
        onEvent: () => undefined,
        reconnectTimeoutMs: 200,
        maxBackoffMs: 20,
      }),
    ).rejects.toBeInstanceOf(ConnectionError);
  });

  it('an aborted follow resolves with the last seq', async () => {
    const client = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(frame(1));
    });
    const ac = new AbortController();
    const last = await followEvents({
      client,
      path: '/s',
      after: 0,
      signal: ac.signal,
      onEvent: () => void setTimeout(() => ac.abort(), 10),
    });
    expect(last).toBe(1);
  });
});

describe('API errors', () => {
  it('turns problem+json into code and detail, and anything else into HTTP_<status>', async () => {
    const p = await problemFrom(
      new Response(
        JSON.stringify({
          code: 'VALIDATION',
          detail: 'bad params',
          errors: [{ field: 'params.replicas', reason: 'must be integer' }],
        }),
        { status: 422 },
      ),
    );
    expect(p).toMatchObject({ status: 422, code: 'VALIDATION', detail: 'bad params' });
    expect(errorLines(p, colors(false))).toEqual([
      'error: VALIDATION: bad params',
      '  - params.replicas: must be integer',
    ]);
    const proxy = await problemFrom(
      new Response('<html>Bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }),
    );
    expect(proxy).toMatchObject({ code: 'HTTP_502' });
    expect(errorLines(new ApiError(404, 'NOT_FOUND', 'gone'), colors(false))).toEqual([
      'error: NOT_FOUND: gone',
    ]);
  });

  it('says how to pass a token when none was sent, and that the one sent was refused otherwise', () => {
    const e = new ApiError(401, 'AUTH_REQUIRED', 'a bearer token is required');
    expect(errorLines(e, colors(false))).toEqual([
      'error: AUTH_REQUIRED: a bearer token is required',
      '  hint: this server wants a token; set LIFELINE_TOKEN to one it accepts',
    ]);
    expect(errorLines(e, colors(false), true)).toEqual([
      'error: AUTH_REQUIRED: a bearer token is required',
      "  hint: the server did not accept the token in LIFELINE_TOKEN; check it against the server's auth.tokens",
    ]);
  });

  it('says each validation error once, whether or not the detail already states it', () => {
    const one = new ApiError(422, 'VALIDATION', 'invalid body: name: must match ^[a-z]$', [
      { field: 'name', reason: 'must match ^[a-z]$' },
    ]);
    expect(errorLines(one, colors(false))).toEqual([
      'error: VALIDATION: invalid body: name: must match ^[a-z]$',
    ]);
    const two = new ApiError(
      422,
      'VALIDATION',
      'params do not match the schema of plan p: params.a must be >= 1; params.b is not allowed',
      [
        { field: 'params.a', reason: 'must be >= 1' },
        { field: 'params.b', reason: 'is not allowed' },
      ],
    );
    expect(errorLines(two, colors(false))).toEqual([
      'error: VALIDATION: params do not match the schema of plan p',
      '  - params.a: must be >= 1',
      '  - params.b: is not allowed',
    ]);
  });

  it('rejects a LIFELINE_URL that is not http(s)', () => {
    expect(() => new ApiClient({ url: 'ftp://x' })).toThrow(/http/);
    expect(new ApiClient({ url: 'http://h:1/' }).url('/v1/x', { a: 1, b: undefined, c: ['p', 'q'] })).toBe(
      'http://h:1/v1/x?a=1&c=p&c=q',
    );
  });
});

describe('where a follow starts, and how it ends', () => {
  const t = (seq: number, attempt_id: string | null): Transition => ({
    seq,
    at: '',
    from: null,
    to: 'pending',
    trigger: 'x',
    reason: null,
    actor: 'a',
    attempt_id,
  });

  it('starts before the attempt’s first transition, or after the last one for a new attempt', () => {
    const ts = [t(2, null), t(4, 'att_1'), t(10, 'att_1'), t(13, 'att_2'), t(19, 'att_2')];
    expect(seqBeforeAttempt(ts, 'att_1')).toBe(2);
    expect(seqBeforeAttempt(ts, 'att_2')).toBe(10);
    expect(seqBeforeAttempt([t(4, 'att_1')], 'att_1')).toBe(0);
    expect(lastTransitionSeq(ts)).toBe(19);
    expect(lastTransitionSeq([])).toBe(0);
  });

  it('maps the attempt outcome to the exit code of SPEC §7', () => {
    expect(exitCodeFor('succeeded')).toBe(0);
    expect(exitCodeFor('failed')).toBe(1);
    expect(exitCodeFor('cancelled')).toBe(1);
    expect(exitCodeFor('unknown')).toBe(3);
  });
});

describe('formatting', () => {
  it('colour only on a TTY, never with NO_COLOR or TERM=dumb, whatever FORCE_COLOR says', () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colorEnabled({}, {})).toBe(false);
  });

  it('draws the live status line only where colour is allowed: a terminal, no NO_COLOR, no TERM=dumb', () => {
    const term = { isTTY: true } as NodeJS.WriteStream;
    expect(makeOut(term, term, {}).tty).toBe(true);
    expect(makeOut(term, term, { NO_COLOR: '1' }).tty).toBe(false);
    expect(makeOut(term, term, { TERM: 'dumb' }).tty).toBe(false);
    expect(makeOut({ isTTY: false } as NodeJS.WriteStream, term, {}).tty).toBe(false);
  });

  it('relative times and durations', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    const ago = (ms: number) => new Date(now - ms).toISOString();
    expect(relativeTime(ago(1000), now)).toBe('just now');
    expect(relativeTime(ago(42_000), now)).toBe('42s ago');
    expect(relativeTime(ago(3 * 60_000 + 5000), now)).toBe('3m ago');
    expect(relativeTime(ago(5 * 3600_000), now)).toBe('5h ago');
    expect(relativeTime(ago(2 * 86400_000), now)).toBe('2d ago');
    expect(relativeTime(ago(-120_000), now)).toBe('in 2m');
    expect(relativeTime(null, now)).toBe('-');
    expect(duration(300)).toBe('0.3s');
    expect(duration(12_449)).toBe('12.4s');
    expect(duration(185_000)).toBe('3m 05s');
    expect(duration(2 * 3600_000 + 7 * 60_000)).toBe('2h 07m');
    expect(duration(-5)).toBe('0.0s');
    expect(duration(null)).toBe('-');
  });

  it('aligns table columns, ignoring colour codes', () => {
    const c = colors(true);
    const lines = table(
      ['A', 'BB', 'C'],
      [
        [c.green('xxxx'), 'y', 'z'],
        ['q', c.red('long cell'), 'end'],
      ],
      c,
    );
    const plain = lines.map(stripAnsi);
    expect(plain).toEqual(['A     BB         C', 'xxxx  y          z', 'q     long cell  end']);
  });

  it('truncates to a width and keeps colour codes balanced', () => {
    const c = colors(true);
    const s = `${c.green('abcdef')}ghij`;
    expect(stripAnsi(truncate(s, 4))).toBe('abcd');
    expect(truncate(s, 4).endsWith('\x1b[0m')).toBe(true);
    expect(truncate('abc', 5)).toBe('abc');
  });
});

describe('runCli: the program in-process', () => {
  let srv: http.Server | null = null;
  afterEach(() => {
    srv?.closeAllConnections();
    srv?.close();
    srv = null;
  });

  /** An io whose streams keep what is written (not terminals), with `env`. */
  function capture(env: NodeJS.ProcessEnv) {
    const text = { out: '', err: '' };
    const sink = (key: 'out' | 'err') =>
      new Writable({
        decodeStrings: false,
        write(chunk: string, _enc, cb) {
          text[key] += chunk;
          cb();
        },
      });
    return { io: { env, stdout: sink('out'), stderr: sink('err') }, text };
  }

  it('returns the exit code instead of exiting; commander writes to the streams it is given', async () => {
    const v = capture({});
    expect(await runCli(['--version'], v.io)).toBe(0);
    expect(v.text).toEqual({ out: `${VERSION}\n`, err: '' });
    const u = capture({});
    expect(await runCli(['no-such-command'], u.io)).toBe(2);
    expect(u.text).toEqual({
      out: '',
      err: "error: unknown command 'no-such-command'\nhint: see lifeline --help\n",
    });
    const bad = capture({ LIFELINE_URL: 'not a url' });
    expect(await runCli(['ls'], bad.io)).toBe(2);
    expect(bad.text).toEqual({ out: '', err: 'error: LIFELINE_URL is not a URL: not a url\n' });
  });

  it('a client command reads LIFELINE_URL and LIFELINE_TOKEN from the env it is given', async () => {
    const auth: (string | undefined)[] = [];
    srv = http.createServer((req, res) => {
      auth.push(req.headers.authorization);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ items: [], next_cursor: null }));
    });
    await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    const r = capture({ LIFELINE_URL: url, LIFELINE_TOKEN: 't0k' });
    expect(await runCli(['ls'], r.io)).toBe(0);
    expect(r.text).toEqual({ out: 'No deployments.\n', err: '' });
    expect(auth).toEqual(['Bearer t0k']);
  });
});
