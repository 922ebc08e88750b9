// Fuzzing the HTTP API with fast-check: thousands of generated requests across every route — random and
// hostile bodies, wrong types, huge strings, odd unicode, path junk, wrong content types, bad query
// values, junk conditions and tokens. Whatever comes in: never a 5xx; every 4xx is a well-formed
// problem+json with a SPEC code; and a rejected request leaves the store exactly as it was (SPEC §8.6).
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/domain/types.ts';
import {
  TOKENS,
  bearer,
  harness,
  json,
  quiesce,
  snapshot,
  waitState,
  type Harness,
  type StoreSnapshot,
} from './helpers.ts';
import { DIALECTS } from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';

// Default suite / LIFELINE_TEST_FULL=1 (test/helpers/full.ts). The rarest status the test requires (415)
// comes about once in 200 requests: below these counts a run could miss it by chance.
const RUNS = scaled(1200, 4000);
// On Postgres every request also pays a snapshot of the store over the network: fewer runs there keep the
// file's time reasonable; the generators and checks are the same.
const runsOn = (dialect: string) => (dialect === 'sqlite' ? RUNS : scaled(700, 1400));
const TOKENS_ADMIN = TOKENS.admin;

let h: Harness;
const names = ['fz-pending', 'fz-ready', 'fz-torn', 'fz-failed'];
const ids: string[] = [];
let attemptId = '';
let runId = '';

const ROUTES: [string, string][] = [
  ['GET', '/v1/health'],
  ['GET', '/v1/health/ready'],
  ['GET', '/v1/plans'],
  ['GET', '/v1/instances'],
  ['POST', '/v1/deployments'],
  ['GET', '/v1/deployments'],
  ['GET', '/v1/deployments/{ref}'],
  ['DELETE', '/v1/deployments/{ref}'],
  ['POST', '/v1/deployments/{ref}/attempts'],
  ['GET', '/v1/deployments/{ref}/attempts'],
  ['GET', '/v1/attempts/{id}'],
  ['GET', '/v1/attempts/{id}/log'],
  ['POST', '/v1/deployments/{ref}/cancel'],
  ['POST', '/v1/deployments/{ref}/teardown'],
  ['POST', '/v1/deployments/{ref}/resolve'],
  ['POST', '/v1/deployments/{ref}/check'],
  ['GET', '/v1/deployments/{ref}/transitions'],
  ['GET', '/v1/events'],
  ['GET', '/v1/deployments/{ref}/events'],
  ['GET', '/v1/events/stream'],
  ['GET', '/v1/deployments/{ref}/events/stream'],
  ['GET', '/openapi.json'],
  ['POST', '/v1/stacks'],
  ['GET', '/v1/stacks'],
  ['GET', '/v1/stacks/{ref}'],
  ['PUT', '/v1/stacks/{ref}'],
  ['DELETE', '/v1/stacks/{ref}'],
  ['POST', '/v1/stacks/{ref}/deploy'],
  ['POST', '/v1/stacks/{ref}/teardown'],
  ['POST', '/v1/stacks/{ref}/cancel'],
  ['GET', '/v1/stacks/{ref}/runs'],
  ['GET', '/v1/runs/{run}'],
];

// ---- generators ---------------------------------------------------------------------------------

const oddStrings = fc.constantFrom(
  '',
  ' ',
  '..',
  '../..',
  '%00',
  '\u0000',
  'null',
  'true',
  '-1',
  '1e309',
  '0x10',
  'NaN',
  '\u202e\u0645\u0631\u062d\u0628\u0627',
  '💥🔥',
  'Z̷̢͎a̴l̵g̷o̶',
  '\ud800',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '${jndi:ldap://x}',
  '__proto__',
  'constructor',
  'fz-ready',
  'fz-pending',
  'fz-stack',
  'ok',
  'fail',
  'sleep-not',
  'x'.repeat(70),
  'a'.repeat(5000),
);

const junkString = fc.oneof(
  oddStrings,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
);

const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  junkString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(junkString, fc.oneof(junkString, fc.integer()), { maxKeys: 3 }),
);

const FIELDS = [
  'name',
  'plan',
  'params',
  'labels',
  'force',
  'confirm',
  'state',
  'reason',
  'replicas',
  '__proto__',
  'units',
  'key',
  'count',
  'after',
  'on_failure',
  'all',
];

/** Objects made of the API's own field names with random, often wrong, values. */
const hostileObject = fc.dictionary(fc.oneof(fc.constantFrom(...FIELDS), junkString), junkValue, {
  maxKeys: 5,
});

/** Bodies that are nearly valid, to get past the schema into the service's refusals. */
const nearlyValid = fc.oneof(
  fc.record({
    name: fc.oneof(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/), junkString),
    plan: fc.constantFrom('ok', 'fail', 'nope', ''),
  }),
  fc.record(
    { confirm: fc.constantFrom(...names, 'fz-stack', 'nope'), force: fc.boolean() },
    { requiredKeys: ['confirm'] },
  ),
  // Run requests (SPEC §12.4): unit keys that exist or not, `all`, `force`, often of the wrong type.
  fc.record(
    {
      units: fc.oneof(fc.array(fc.constantFrom('a', 'b', 'zz', ''), { maxLength: 3 }), junkValue),
      all: fc.oneof(fc.boolean(), junkValue),
      force: fc.oneof(fc.boolean(), junkValue),
    },
    { requiredKeys: [] },
  ),
  fc.record({ state: fc.constantFrom('ready', 'failed', 'torn_down', 'unknown'), reason: junkString }),
  fc.record(
    { params: fc.dictionary(junkString, junkValue, { maxKeys: 2 }), force: fc.boolean() },
    { requiredKeys: [] },
  ),
  // Stack specs (SPEC §12.2): keys, counts and `after` lists that are often wrong (cycles, unknown keys).
  fc.record(
    {
      name: fc.oneof(
        fc.constantFrom('fz-stack', 'fz-s2'),
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,44}$/),
        junkString,
      ),
      on_failure: fc.oneof(fc.constantFrom('stop', 'continue'), junkValue),
      labels: fc.oneof(fc.dictionary(junkString, junkString, { maxKeys: 2 }), junkValue),
      units: fc.oneof(
        fc.array(
          fc.record(
            {
              key: fc.oneof(fc.constantFrom('a', 'b', 'c', 'pending'), junkString),
              plan: fc.constantFrom('ok', 'fail', 'secret', 'nope'),
              count: fc.oneof(fc.integer({ min: -1, max: 102 }), junkValue),
              after: fc.oneof(fc.array(fc.constantFrom('a', 'b', 'c', 'zz'), { maxLength: 3 }), junkValue),
              params: fc.oneof(fc.constant({ replicas: 2 }), junkValue),
            },
            { requiredKeys: ['key', 'plan'] },
          ),
          { maxLength: 4 },
        ),
        junkValue,
      ),
    },
    { requiredKeys: ['name', 'units'] },
  ),
);

type Body =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'raw'; text: string }
  | { kind: 'huge'; size: number }
  | { kind: 'deep'; depth: number };

const body: fc.Arbitrary<Body> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Body>({ kind: 'none' }) },
  { weight: 4, arbitrary: hostileObject.map((value): Body => ({ kind: 'json', value })) },
  { weight: 3, arbitrary: nearlyValid.map((value): Body => ({ kind: 'json', value })) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value): Body => ({ kind: 'json', value })) },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 50 }),
        fc.constantFrom(
          '{',
          '{"name":',
          '[1,2',
          '{"a":1}}',
          'nul',
          '\uFEFF{}',
          '{"__proto__":{"x":1}}',
          '{"constructor":{"prototype":{}}}',
        ),
      )
      .map((text): Body => ({ kind: 'raw', text })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(20_000, 900_000, 1_100_000).map((size): Body => ({ kind: 'huge', size })),
  },
);

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=zz',
      'application/problem+json',
      'application/jsonx',
      '*/*',
      ';;;',
      '',
    ),
  },
);

const QUERY_KEYS = [
  'limit',
  'cursor',
  'state',
  'plan',
  'label',
  'after',
  'type',
  'deployment',
  'offset',
  'force',
];
const queryValue = fc.oneof(
  junkString,
  fc.integer({ min: -1000, max: 1_000_000 }).map(String),
  fc.constantFrom(
    '500',
    '501',
    '0',
    '1',
    '1000',
    '1001',
    'true',
    'false',
    'ready',
    'state_transition,log_line',
    'a=b',
    '=',
    '9'.repeat(30),
  ),
);
const query = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), junkString), queryValue), {
  maxLength: 4,
});

const ref = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...names) },
  { weight: 2, arbitrary: fc.constantFrom('fz-stack', 'fz-stack-a') },
  { weight: 2, arbitrary: fc.constant('@id') },
  { weight: 4, arbitrary: junkString },
);

const who = fc.oneof(
  { weight: 6, arbitrary: fc.constant('admin') },
  { weight: 2, arbitrary: fc.constant('operator') },
  { weight: 3, arbitrary: fc.constantFrom('viewer', 'none', 'bad', 'junk') },
);

// Hostile Host / Origin / Sec-Fetch-Site (issue 9 item 5). Injected requests have no socket, so any port
// passes with a loopback name; a foreign name must be refused whatever else the request says.
const FOREIGN_HOSTS = [
  'attacker.example',
  'attacker.example:80',
  '127.0.0.1.nip.io',
  'localhost.evil',
  '[::2]',
];
const LOOPBACK_HOSTS = ['localhost:80', '127.0.0.1:7400', '[::1]:80', 'LOCALHOST'];
const WRITES = ['POST', 'PUT', 'PATCH', 'DELETE'];
const hostHeader = fc.option(fc.oneof(fc.constantFrom(...LOOPBACK_HOSTS, ...FOREIGN_HOSTS), junkString), {
  freq: 5,
  nil: undefined,
});
const CROSS_ORIGINS = [
  'https://evil.example',
  'null',
  'http://localhost:81',
  'file://',
  'http://127.0.0.1.nip.io',
];
const originHeader = fc.option(fc.oneof(fc.constantFrom('http://localhost', ...CROSS_ORIGINS), junkString), {
  freq: 4,
  nil: undefined,
});
const fetchSite = fc.option(fc.constantFrom('same-origin', 'none', 'same-site', 'cross-site', 'junk', ''), {
  freq: 4,
  nil: undefined,
});

interface FuzzRequest {
  route: [string, string];
  method: string | null; // null = the route's own
  ref: string;
  suffix: string;
  query: [string, unknown][];
  body: Body;
  contentType: string | undefined;
  who: string;
  ifMatch: string | undefined;
  idemKey: string | undefined;
  requestId: string | undefined;
  host: string | undefined;
  origin: string | undefined;
  fetchSite: string | undefined;
}

const request: fc.Arbitrary<FuzzRequest> = fc.record({
  route: fc.constantFrom(...ROUTES),
  method: fc.oneof(
    { weight: 9, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD') },
  ),
  ref,
  suffix: fc.oneof(
    { weight: 9, arbitrary: fc.constant('') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('/', '//', '/..', '/%2e%2e/x', '/extra', '?', '#frag', '/%', ';x'),
    },
  ),
  query,
  body,
  contentType,
  who,
  ifMatch: fc.option(fc.oneof(fc.constantFrom('"1"', '"2"', '"99"', '*', 'W/"1"', '1', '"x"'), junkString), {
    freq: 4,
    nil: undefined,
  }),
  idemKey: fc.option(fc.oneof(fc.constantFrom('k1', 'k2', 'k3'), junkString), { freq: 4, nil: undefined }),
  requestId: fc.option(junkString, { freq: 5, nil: undefined }),
  host: hostHeader,
  origin: originHeader,
  fetchSite,
});

function enc(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return '%ED%A0%80'; // a lone surrogate, percent-encoded
  }
}

function toInject(r: FuzzRequest) {
  const [routeMethod, template] = r.route;
  const refValue = r.ref === '@id' ? ids[0] : r.ref;
  let url = template
    .replace('{ref}', enc(refValue))
    .replace('{id}', r.ref === '@id' ? attemptId : enc(refValue))
    .replace('{run}', r.ref === '@id' ? runId : enc(refValue));
  // A stream that validates would stay open, so streams get no suffix (a `#` would hide the query) and
  // an `after` that can never validate.
  if (!template.endsWith('/stream')) url += r.suffix;
  const q = r.query.map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  if (template.endsWith('/stream')) q.push('after=not-a-seq');
  if (q.length > 0) url += (url.includes('?') ? '&' : '?') + q.join('&');

  const headers: Record<string, string> = {};
  if (r.who === 'bad') headers.authorization = 'Bearer nope';
  else if (r.who === 'junk') headers.authorization = 'Bearer \u00ff\u00fe';
  else if (r.who !== 'none') Object.assign(headers, bearer(r.who as 'admin'));
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.ifMatch !== undefined) headers['if-match'] = wire(r.ifMatch);
  if (r.idemKey !== undefined) headers['idempotency-key'] = wire(r.idemKey);
  if (r.requestId !== undefined) headers['x-request-id'] = wire(r.requestId);
  if (r.host !== undefined) headers.host = wire(r.host);
  if (r.origin !== undefined) headers.origin = wire(r.origin);
  if (r.fetchSite !== undefined) headers['sec-fetch-site'] = r.fetchSite;

  let payload: string | undefined;
  switch (r.body.kind) {
    case 'json':
      payload = JSON.stringify(r.body.value) ?? 'null';
      break;
    case 'raw':
      payload = r.body.text;
      break;
    case 'huge':
      payload = JSON.stringify({ name: 'huge', plan: 'ok', labels: { a: 'x'.repeat(r.body.size) } });
      break;
    case 'deep':
      payload = `{"name":"deep","plan":"ok","params":{"a":${'['.repeat(r.body.depth)}${']'.repeat(r.body.depth)}}}`;
      break;
  }
  return { method: r.method ?? routeMethod, url, headers, payload };
}

/** A header value as a raw client would put it on the wire: UTF-8 bytes, no control characters. */
function wire(v: string): string {
  return Buffer.from(v, 'utf8')
    .toString('latin1')
    .replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
}

const CODES = new Set<string>([...ERROR_CODES]);

describe('isWholeWrite (which raw requests may commit without an answer)', () => {
  const whole = (t: string) => isWholeWrite(Buffer.from(t, 'latin1'));
  it('a whole POST or DELETE, with or without a body, garbage after it or not', () => {
    expect(whole('DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n\r\n\u0005')).toBe(true);
    expect(whole('POST /x HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(true);
    expect(whole('POST /x HTTP/1.1\r\ncontent-length:  2\r\n\r\n{}garbage')).toBe(true);
  });
  it('not a write, a head cut short, a body cut short, chunked or an ambiguous length', () => {
    expect(whole('GET /x HTTP/1.1\r\nHost: a\r\n\r\n')).toBe(false);
    expect(whole('POST /x HTTP/1.1\r\nHost: a\r\n')).toBe(false);
    expect(whole('POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n{}')).toBe(false);
    expect(whole('POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toBe(false);
    expect(whole('POST /x HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n')).toBe(false);
    expect(whole('POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n')).toBe(false);
  });
});

describe.each(DIALECTS)('fuzz on %s', (dialect) => {
  beforeAll(async () => {
    h = await harness({ auth: true, dialect });
    const admin = bearer('admin');
    const post = (url: string, payload?: object) =>
      h.app.inject({ method: 'POST', url, payload, headers: admin });
    for (const [name, plan] of [
      ['fz-pending', 'ok'],
      ['fz-ready', 'ok'],
      ['fz-torn', 'ok'],
      ['fz-failed', 'fail'],
    ]) {
      ids.push(json(await post('/v1/deployments', { name, plan, labels: { fuzz: 'yes' } })).id);
    }
    attemptId = json(await post('/v1/deployments/fz-ready/attempts')).id;
    await waitState(h.app, 'fz-ready', 'ready', admin);
    await post('/v1/deployments/fz-torn/attempts');
    await waitState(h.app, 'fz-torn', 'ready', admin);
    await post('/v1/deployments/fz-torn/teardown', { confirm: 'fz-torn' });
    await waitState(h.app, 'fz-torn', 'torn_down', admin);
    await post('/v1/deployments/fz-failed/attempts');
    await waitState(h.app, 'fz-failed', 'failed', admin);
    await post('/v1/stacks', {
      name: 'fz-stack',
      units: [
        { key: 'a', plan: 'ok' },
        { key: 'b', plan: 'ok', after: ['a'] },
      ],
    });
    // One run ended, so that GET /v1/runs/{id} has a run to read (and refusals a run to leave alone).
    runId = json(await post('/v1/stacks/fz-stack/deploy', {})).id;
    await quiesce(h.engine);
  });
  afterAll(async () => {
    await h?.close();
  });
  it(
    `${runsOn(dialect)} generated requests: no 5xx, problem+json on every 4xx, nothing written by a rejection`,
    async () => {
      let baseline: StoreSnapshot = await snapshot(h.engine);
      const stats = { sent: 0, byStatus: new Map<number, number>(), writes: 0 };
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          const req = toInject(r);
          let res;
          try {
            let timer: NodeJS.Timeout | undefined;
            const hang = new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer in 5 s: ${req.method} ${req.url}`)), 5000);
            });
            res = await Promise.race([h.app.inject({ ...req, method: req.method as 'GET' }), hang]).finally(
              () => clearTimeout(timer),
            );
          } catch (err) {
            // light-my-request refused to build the request (e.g. an invalid header): not a server outcome
            if (/^no answer/.test((err as Error).message)) throw err;
            if (/Invalid|header|character/i.test((err as Error).message)) return;
            throw err;
          }
          stats.sent++;
          stats.byStatus.set(res.statusCode, (stats.byStatus.get(res.statusCode) ?? 0) + 1);
          const what = `${req.method} ${req.url.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
          expect(res.statusCode, what).toBeLessThan(500);
          // The Host and Origin rules hold whatever else the request carries (only the router's 400 or 414 for an
          // undecodable or over-long URL comes first: it answers before any hook and reads nothing).
          const sameHost = r.host === undefined || LOOPBACK_HOSTS.includes(r.host);
          if (r.host !== undefined && FOREIGN_HOSTS.includes(r.host))
            expect([400, 414, 421], what).toContain(res.statusCode);
          else if (
            sameHost &&
            WRITES.includes(req.method) &&
            ((r.origin !== undefined && CROSS_ORIGINS.includes(r.origin)) ||
              (r.fetchSite !== undefined && !['same-origin', 'none'].includes(r.fetchSite)))
          ) {
            expect([400, 414, 403], what).toContain(res.statusCode);
          }
          if (res.statusCode >= 400) {
            expect(res.headers['content-type'], what).toMatch(/^application\/problem\+json/);
            if (req.method !== 'HEAD') {
              const p = JSON.parse(res.body);
              expect(p.status, what).toBe(res.statusCode);
              expect(CODES.has(p.code), what).toBe(true);
              expect(
                typeof p.type === 'string' && typeof p.title === 'string' && typeof p.detail === 'string',
                what,
              ).toBe(true);
              expect(p.trace_id, what).toBe(res.headers['x-request-id']);
              expect(res.body, what).not.toMatch(/\bat .*\.ts:\d+/); // no stack traces
            }
            expect(await snapshot(h.engine), what).toEqual(baseline);
          } else if (req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE') {
            // an accepted write: let its background work finish, then it is the new baseline
            stats.writes++;
            await quiesce(h.engine, 60);
            baseline = await snapshot(h.engine);
          } else {
            expect(await snapshot(h.engine), what).toEqual(baseline);
          }
        }),
        { numRuns: runsOn(dialect), endOnFailure: true },
      );
      if (process.env.FUZZ_STATS) console.log(JSON.stringify({ ...stats, byStatus: [...stats.byStatus] }));
      expect(stats.sent).toBeGreaterThanOrEqual(runsOn(dialect) * 0.9);
      // the generators reach deep: several distinct refusals and some accepted requests
      expect([...stats.byStatus.keys()]).toEqual(
        expect.arrayContaining([200, 400, 401, 403, 404, 415, 421, 422]),
      );
    },
    scaled(300_000, 900_000),
  ); // thousands of requests: slow on a loaded machine, not a speed check

  it(
    `${RAW_RUNS} malformed requests over a raw socket: problem+json below 500, nothing written`,
    async () => {
      await h.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (h.app.server.address() as net.AddressInfo).port;
      // Attempts the generated requests above accepted may still be running: let them end first.
      await quiesce(h.engine, 60);
      let baseline = await snapshot(h.engine);
      const seen = new Set<number>();
      /** The server's open connections, once none is left or after `ms`. */
      const openConnectionsAfter = async (ms: number) => {
        const until = Date.now() + ms;
        for (;;) {
          const n = await new Promise<number>((r) => h.app.server.getConnections((_e, c) => r(c)));
          if (n === 0 || Date.now() > until) return n;
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      await fc.assert(
        fc.asyncProperty(rawRequestBytes, async (text) => {
          const bytes = Buffer.from(text.replaceAll('{self}', `127.0.0.1:${port}`), 'latin1');
          const answer = await exchange(port, bytes);
          // Whatever the bytes, the server lets the connection go: one it held would hold its stop too.
          expect(
            await openConnectionsAfter(10_000),
            `${JSON.stringify(text.slice(0, 300))}${h.describeSockets()}`,
          ).toBe(0);
          const what = `${JSON.stringify(bytes.toString('latin1').slice(0, 300))} → ${JSON.stringify(answer.slice(0, 400))}`;
          const statuses = [...answer.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
          for (const status of statuses) {
            seen.add(status);
            expect(status, what).toBeLessThan(500);
          }
          const first = /^HTTP\/1\.[01] (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(answer);
          if (first && Number(first[1]) >= 400) {
            expect(first[2], what).toMatch(/^content-type: application\/problem\+json/im);
            expect(first[2], what).toMatch(/^x-request-id: \S+/im);
          }
          // A whole POST/DELETE ahead of the garbage is a real request: it may commit with no answer seen,
          // since the client's half-close (sock.end) lets Node end the socket before a slow write answers.
          if (
            (statuses.some((st) => st >= 200 && st < 300) || isWholeWrite(bytes)) &&
            /^(POST|DELETE) /.test(text)
          ) {
            await quiesce(h.engine, 60); // an accepted write: its work is the new baseline
            baseline = await snapshot(h.engine);
          } else {
            expect(await snapshot(h.engine), what).toEqual(baseline);
          }
        }),
        {
          numRuns: RAW_RUNS,
          endOnFailure: true,
          // Oversize headers (431) come from one constant of many: a run of 400 missed them once (CI,
          // 8 Dec). Every run now tries one such request first, then the generated ones.
          examples: [[`GET /v1/plans HTTP/1.1\r\nHost: {self}\r\nX-Big: ${'a'.repeat(17_000)}\r\n\r\n`]],
        },
      );
      // the parser's refusals as well as the hooks'
      expect([...seen]).toEqual(expect.arrayContaining([400, 403, 421, 431]));
    },
    scaled(120_000, 240_000),
  );
});

// ---- malformed HTTP at the socket level ---------------------------------------------------------

// The 431 it requires comes from one example run first (a header constant of many); the 400, 403 and 421
// from a third of the generated requests.
const RAW_RUNS = scaled(250, 800);

/** Writes the bytes, half-closes, and reads until the server closes (after 5 s: what came so far). */
/**
 * Whether `bytes` begin with a whole POST or DELETE: a request line, headers ended by an empty line, no
 * Transfer-Encoding, and either no Content-Length or one whose body has all arrived (`Content-Length: 0`
 * included). Such a request is served even when garbage follows it on the connection.
 */
function isWholeWrite(bytes: Buffer): boolean {
  const text = bytes.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = text.slice(0, end);
  if (!/^(POST|DELETE) \S+ HTTP\/1\.[01]\r\n/.test(head) || /\r\ntransfer-encoding:/i.test(head))
    return false;
  const lengths = [...head.matchAll(/\r\ncontent-length:[ \t]*([^\r\n]*)/gi)].map((m) => m[1].trim());
  if (lengths.length === 0) return true;
  if (lengths.length > 1 || !/^\d+$/.test(lengths[0])) return false;
  return text.length - (end + 4) >= Number(lengths[0]);
}

function exchange(port: number, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => sock.destroy(), 5000);
    sock.on('data', (b) => chunks.push(b));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // the server may close first when it refuses mid-request; anything else is a failure
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    sock.end(bytes);
  });
}

const EOL = fc.constantFrom('\r\n', '\r\n', '\r\n', '\n', '\r');
const rawMethod = fc.constantFrom(
  'GET',
  'POST',
  'POST',
  'DELETE',
  'PUT',
  'FROB',
  'G ET',
  '',
  'get',
  'PRI',
  'TRACE',
  'CONNECT',
);
const rawTarget = fc.constantFrom(
  '/v1/plans',
  '/v1/deployments',
  '/v1/deployments/fz-ready',
  '/v1/deployments/fz-ready/attempts',
  '/v1/deployments/fz-pending?force=true',
  '/v1/deployments/fz-ready/teardown',
  '*',
  'http://evil.example/v1/plans',
  '/%',
  '',
  '/v1/plans?\u0000',
);
const rawVersion = fc.constantFrom(
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/2.0',
  'HTTP/1.1 x',
  '',
  'http/1.1',
);
const rawHeader = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom(
      'Host: {self}',
      'Host: {self}',
      'Host: {self}',
      'Host: attacker.example',
      'Host: localhost',
      'Host:',
      'Host: {self}\r\nHost: attacker.example',
      'Origin: https://evil.example',
      'Origin: null',
      'Origin: http://{self}',
      'Sec-Fetch-Site: cross-site',
      'Sec-Fetch-Site: same-origin',
      `Authorization: Bearer ${TOKENS_ADMIN}`,
      `Authorization: Bearer ${TOKENS_ADMIN}`,
      'Authorization: Bearer nope',
      'Content-Type: application/json',
      'Content-Length: 0',
      'Content-Length: 27',
      'Content-Length: -1',
      'Content-Length: 27\r\nContent-Length: 3',
      'Content-Length: 99999999999999999999',
      'Transfer-Encoding: chunked',
      'Transfer-Encoding: gzip, chunked',
      'Transfer-Encoding: chunked\r\nContent-Length: 3',
      `X-Big: ${'a'.repeat(17_000)}`,
      'Bad Header: x',
      ': empty-name',
      'X-Folded: a\r\n b',
      'X-Nul: a\u0000b',
      'Expect: 100-continue',
      'Connection: Upgrade\r\nUpgrade: websocket',
      'Connection: keep-alive',
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }) },
);
const rawBody = fc.oneof(
  fc.constantFrom(
    '',
    '{}',
    '{"name":"raw-1","plan":"ok"}',
    '0\r\n\r\n',
    '5\r\n{"a":\r\n0\r\n\r\n',
    'zz\r\n',
    '{"confirm":"fz-ready","x":1e999}',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 40 }),
);

/** A request line, headers and a body, each often wrong; or bytes with no HTTP shape at all. */
const rawRequestBytes: fc.Arbitrary<string> = fc.oneof(
  {
    // a clean request whose only fault is where it comes from: a foreign Host or a cross-origin write
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom('GET', 'POST', 'DELETE'),
        rawTarget,
        fc.constantFrom('{self}', '{self}', 'attacker.example', 'localhost:1', '[::1]'),
        fc.constantFrom(
          'Origin: https://evil.example',
          'Origin: null',
          'Sec-Fetch-Site: cross-site',
          'Sec-Fetch-Site: same-site',
          'Origin: http://{self}',
        ),
      )
      .map(([m, t, host, from]) => `${m} ${t || '/'} HTTP/1.1\r\nHost: ${host}\r\n${from}\r\n\r\n`),
  },
  {
    // well framed, with this server's Host: the hooks and the body parser see what the headers carry
    weight: 5,
    arbitrary: fc
      .tuple(
        fc.constantFrom('GET', 'POST', 'DELETE'),
        rawTarget,
        fc.array(rawHeader, { maxLength: 4 }),
        rawBody,
      )
      .map(
        ([m, t, hs, b]) => `${[`${m} ${t || '/'} HTTP/1.1`, 'Host: {self}', ...hs].join('\r\n')}\r\n\r\n${b}`,
      ),
  },
  {
    weight: 9,
    arbitrary: fc
      .tuple(rawMethod, rawTarget, rawVersion, fc.array(rawHeader, { maxLength: 6 }), rawBody, EOL)
      .map(([m, t, v, hs, b, eol]) => `${[`${m} ${t} ${v}`, ...hs].join(eol)}${eol}${eol}${b}`),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a).toString('latin1')),
  },
);
