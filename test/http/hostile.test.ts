// Issue 9 through a real listening server: DNS rebinding (a foreign Host), cross-site writes (Origin,
// Sec-Fetch-Site), requests Node's HTTP parser refuses (sent byte by byte on a raw socket), and body values
// that cannot be stored as sent (1e999, lone surrogates). Every refusal is problem+json and writes nothing.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, configFromObject } from '../../src/config/load.ts';
import { ERROR_CODES } from '../../src/domain/types.ts';
import { harness, quiesce, snapshot, waitState, type Harness } from './helpers.ts';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends bytes as they are on a fresh connection and reads the whole answer (the server closes it). */
export function rawRequest(port: number, bytes: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    sock.on('data', (b) => chunks.push(b));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, ...rest] = text.split('\r\n\r\n');
      const lines = head.split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = rest.join('\r\n\r\n');
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = unchunk(body);
      resolve({ status, headers, body });
    });
    sock.write(bytes);
  });
}

function unchunk(s: string): string {
  let out = '';
  let rest = s;
  for (;;) {
    const i = rest.indexOf('\r\n');
    const n = parseInt(rest.slice(0, i), 16);
    if (!n) return out;
    out += rest.slice(i + 2, i + 2 + n);
    rest = rest.slice(i + 2 + n + 2);
  }
}

/** One HTTP/1.1 request with `Connection: close`; headers are written exactly as given. */
export function request(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  const lines = [`${method} ${path} HTTP/1.1`];
  const all: Record<string, string> = { ...headers, connection: 'close' };
  if (body !== undefined) {
    all['content-type'] ??= 'application/json';
    all['content-length'] = String(Buffer.byteLength(body));
  }
  for (const [k, v] of Object.entries(all)) lines.push(`${k}: ${v}`);
  return rawRequest(port, `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
}

export function expectRawProblem(res: RawResponse, status: number, code?: string) {
  expect(res.status, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const p = JSON.parse(res.body);
  expect(p).toMatchObject({ status, type: expect.any(String), title: expect.any(String) });
  expect([...ERROR_CODES]).toContain(p.code);
  expect(p.trace_id).toBe(res.headers['x-request-id']);
  if (code) expect(p.code).toBe(code);
  return p as { code: string; detail: string; errors?: { field: string; reason: string }[] };
}

let h: Harness;
let port = 0;
let self = '';

beforeAll(async () => {
  // No tokens: every caller is admin, as in the attack.
  h = await harness({ extra: { server: { host: '127.0.0.1', allowed_hosts: ['lifeline.example'] } } });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  port = (h.app.server.address() as net.AddressInfo).port;
  self = `127.0.0.1:${port}`;
  for (const name of ['victim', 'victim2']) {
    const res = await request(
      port,
      'POST',
      '/v1/deployments',
      { host: self },
      JSON.stringify({ name, plan: 'ok' }),
    );
    expect(res.status, res.body).toBe(201);
  }
  await quiesce(h.engine);
});
afterAll(async () => {
  await h?.close();
});

async function unchanged(what: () => Promise<void>) {
  const before = await snapshot(h.engine);
  await what();
  expect(await snapshot(h.engine)).toEqual(before);
}

describe('Host (DNS rebinding)', () => {
  it('a forced DELETE with a foreign Host is refused (421) and deletes nothing', async () => {
    await unchanged(async () => {
      const res = await request(port, 'DELETE', '/v1/deployments/victim?force=true', {
        host: `attacker.example:${port}`,
      });
      const p = expectRawProblem(res, 421, 'FORBIDDEN');
      expect(p.errors).toEqual([{ field: 'host', reason: expect.any(String) }]);
    });
  });

  it('reads with a foreign Host are refused too (a rebound page could read everything)', async () => {
    for (const host of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1.nip.io:${port}`]) {
      expectRawProblem(await request(port, 'GET', '/v1/deployments', { host }), 421, 'FORBIDDEN');
    }
    expectRawProblem(await request(port, 'GET', '/', { host: 'attacker.example' }), 421);
  });

  it('a loopback name with another port, a malformed Host, or none at all is refused', async () => {
    for (const host of [
      `127.0.0.1:${port + 1}`,
      'localhost',
      `localhost:${port}@evil`,
      `[::1`,
      `a b:${port}`,
    ]) {
      expectRawProblem(await request(port, 'GET', '/v1/plans', { host }), 421, 'FORBIDDEN');
    }
    // HTTP/1.0 may omit Host; Node lets it through, the check does not.
    const res = await rawRequest(port, 'GET /v1/plans HTTP/1.0\r\n\r\n');
    expectRawProblem(res, 421, 'FORBIDDEN');
    // HTTP/1.1 must send one; its absence is refused as a problem too, not with Node's bare 400.
    expectRawProblem(
      await rawRequest(
        port,
        'DELETE /v1/deployments/victim?force=true HTTP/1.1\r\nConnection: close\r\n\r\n',
      ),
      421,
    );
  });

  it('answers its listening address, any loopback name with its port, and allowed_hosts', async () => {
    for (const host of [
      self,
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `127.0.0.2:${port}`,
      `[::1]:${port}`,
      'lifeline.example',
      `lifeline.example:${port}`,
      'lifeline.example:443',
    ]) {
      const res = await request(port, 'GET', '/v1/plans', { host });
      expect(res.status, `${host}: ${res.body}`).toBe(200);
    }
  });
});

describe('Origin and Sec-Fetch-Site (CSRF)', () => {
  it('a cross-site POST …/attempts is refused (403) and starts nothing', async () => {
    await unchanged(async () => {
      const res = await request(port, 'POST', '/v1/deployments/victim/attempts', {
        host: self,
        origin: 'https://evil.example',
      });
      const p = expectRawProblem(res, 403, 'FORBIDDEN');
      expect(p.errors).toEqual([{ field: 'origin', reason: expect.any(String) }]);
    });
  });

  it('refuses every write whose Origin or Sec-Fetch-Site is not this origin', async () => {
    const cases: [string, string, Record<string, string>, string?][] = [
      ['POST', '/v1/deployments/victim/attempts', { origin: 'null' }],
      ['POST', '/v1/deployments/victim/attempts', { origin: `http://localhost:${port}` }],
      ['POST', '/v1/deployments/victim/attempts', { origin: `http://127.0.0.1:${port + 1}` }],
      ['POST', '/v1/deployments/victim/attempts', { origin: `ftp://127.0.0.1:${port}` }],
      ['POST', '/v1/deployments/victim/attempts', { origin: 'not a url' }],
      ['POST', '/v1/deployments/victim/attempts', { 'sec-fetch-site': 'cross-site' }],
      ['POST', '/v1/deployments/victim/attempts', { 'sec-fetch-site': 'same-site' }],
      [
        'POST',
        '/v1/deployments/victim/attempts',
        { origin: `http://${self}`, 'sec-fetch-site': 'cross-site' },
      ],
      ['DELETE', '/v1/deployments/victim?force=true', { origin: 'https://evil.example' }],
      [
        'POST',
        '/v1/deployments',
        { origin: 'https://evil.example' },
        JSON.stringify({ name: 'x1', plan: 'ok' }),
      ],
      ['POST', '/v1/deployments/victim/teardown', { 'sec-fetch-site': 'cross-site' }, '{"confirm":"victim"}'],
      ['PUT', '/v1/deployments/victim', { origin: 'https://evil.example' }],
      ['PATCH', '/v1/deployments/victim', { origin: 'https://evil.example' }],
    ];
    await unchanged(async () => {
      for (const [method, path, headers, body] of cases) {
        const res = await request(port, method, path, { host: self, ...headers }, body);
        expect(res.status, `${method} ${path} ${JSON.stringify(headers)}: ${res.body}`).toBe(403);
        expectRawProblem(res, 403, 'FORBIDDEN');
      }
    });
  });

  it('reads from another origin are not refused (the browser keeps their answers from the page)', async () => {
    const res = await request(port, 'GET', '/v1/plans', {
      host: self,
      origin: 'https://evil.example',
      'sec-fetch-site': 'cross-site',
    });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('same-origin writes pass, as do clients that send neither header (curl, the CLI)', async () => {
    const ok: Record<string, string>[] = [
      {},
      { origin: `http://${self}`, 'sec-fetch-site': 'same-origin' },
      { origin: `http://${self}` },
      { 'sec-fetch-site': 'none' },
    ];
    for (const headers of ok) {
      const res = await request(port, 'POST', '/v1/deployments/victim2/attempts', { host: self, ...headers });
      expect(res.status, res.body).toBe(202);
      await waitState(h.app, 'victim2', 'ready');
    }
    // A configured name behind a TLS proxy: Origin https://name, Host name.
    const res = await request(port, 'POST', '/v1/deployments/victim2/attempts', {
      host: 'lifeline.example',
      origin: 'https://lifeline.example',
    });
    expect(res.status, res.body).toBe(202);
    await waitState(h.app, 'victim2', 'ready');
    await quiesce(h.engine);
  });
});

describe('requests the HTTP parser refuses are problem+json', () => {
  it('431 for oversize headers', async () => {
    const res = await rawRequest(
      port,
      `GET /v1/plans HTTP/1.1\r\nHost: ${self}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expectRawProblem(res, 431, 'VALIDATION');
  });

  it('400 for a duplicate Content-Length, and nothing is written', async () => {
    await unchanged(async () => {
      const body = JSON.stringify({ name: 'dup', plan: 'ok' });
      const res = await rawRequest(
        port,
        `POST /v1/deployments HTTP/1.1\r\nHost: ${self}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${body.length}\r\nContent-Length: 2\r\n\r\n${body}`,
      );
      expectRawProblem(res, 400, 'VALIDATION');
    });
  });

  it('400 for an unknown method, a broken request line, and bad header bytes', async () => {
    for (const bytes of [
      `FROB /v1/plans HTTP/1.1\r\nHost: ${self}\r\n\r\n`,
      'GET\r\n\r\n',
      `GET /v1/plans HTTP/9.9\r\nHost: ${self}\r\n\r\n`,
      `GET /v1/plans HTTP/1.1\r\nHost: ${self}\r\nBad Header: x\r\n\r\n`,
      `POST /v1/deployments HTTP/1.1\r\nHost: ${self}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`,
    ]) {
      expectRawProblem(await rawRequest(port, bytes), 400, 'VALIDATION');
    }
    // A whole request (no body) followed by garbage on the same connection: the request is answered
    // first (its write commits, so its response must not be lost), then the garbage gets its problem.
    const made = await request(
      port,
      'POST',
      '/v1/deployments',
      { host: self },
      JSON.stringify({ name: 'pipe-1', plan: 'ok' }),
    );
    expect(made.status).toBe(201);
    const both = await rawRequest(
      port,
      `POST /v1/deployments/pipe-1/attempts HTTP/1.1\r\nHost: ${self}\r\n\r\n{"x":1e999}`,
    );
    expect(both.status).toBe(202);
    expect(both.body).toMatch(/HTTP\/1\.1 400 Bad Request\r\nContent-Type: application\/problem\+json/);
    // Let that attempt end, so the tests after this one see a quiet store.
    for (let i = 0; i < 200; i++) {
      const dep = await request(port, 'GET', '/v1/deployments/pipe-1', { host: self });
      if (JSON.parse(dep.body).state === 'ready') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // CONNECT goes to Node's 'connect' event, not the request handler: refused as a problem too.
    const tunnel = await rawRequest(port, `CONNECT evil.example:443 HTTP/1.1\r\nHost: ${self}\r\n\r\n`);
    expectRawProblem(tunnel, 405, 'NOT_FOUND');
  });
});

describe('a body cut short', () => {
  // The request was dispatched when its headers arrived; its body then stopped short. Nothing can answer
  // it, and a server waiting on it kept the connection open for good (its own close then hung).
  it('closes the connection at once and writes nothing, whether the client ends or garbles the body', async () => {
    const head = (extra: string) =>
      `POST /v1/deployments HTTP/1.1\r\nHost: ${self}\r\nContent-Type: application/json\r\n${extra}\r\n`;
    const cases: [string, boolean][] = [
      [`${head('Content-Length: 27\r\n')}{"name":`, true], // ends mid-body
      [`${head('Content-Length: 27\r\nExpect: 100-continue\r\n')}`, true], // ends before the body
      [`${head('Transfer-Encoding: chunked\r\n')}5\r\n{"a":\r\n`, true], // ends mid-chunking
      [`${head('Transfer-Encoding: chunked\r\n')}5\r\n{"a":\r\nzz\r\n`, false], // a bad chunk size, still open
    ];
    await unchanged(async () => {
      for (const [bytes, ends] of cases) {
        const closed = await new Promise<boolean>((resolve) => {
          const sock = net.connect({ host: '127.0.0.1', port });
          const timer = setTimeout(() => {
            sock.destroy();
            resolve(false);
          }, 15_000);
          sock.on('error', () => undefined);
          // Read what comes (a 100 Continue): an unread socket never sees the server's end, so never closes.
          sock.resume();
          sock.on('close', () => {
            clearTimeout(timer);
            resolve(true);
          });
          if (ends) sock.end(bytes);
          else sock.write(bytes);
        });
        expect(closed, `the server closes: ${JSON.stringify(bytes)}${h.describeSockets()}`).toBe(true);
      }
      const open = await new Promise<number>((r) => h.app.server.getConnections((_e, n) => r(n)));
      expect(open).toBe(0);
    });
  });
});

describe('body values that cannot be stored as sent', () => {
  const post = (body: string) => request(port, 'POST', '/v1/deployments', { host: self }, body);

  it('1e999 in params is refused (422), not stored as null', async () => {
    await unchanged(async () => {
      const p = expectRawProblem(
        await post('{"name":"inf","plan":"ok","params":{"replicas":1e999}}'),
        422,
        'VALIDATION',
      );
      expect(p.errors).toEqual([{ field: 'params.replicas', reason: expect.stringMatching(/number/) }]);
      expectRawProblem(await post('{"name":"inf","plan":"ok","params":{"a":[-1e400]}}'), 422, 'VALIDATION');
    });
  });

  it('a lone surrogate in a label, a param or a key is refused (422)', async () => {
    await unchanged(async () => {
      const p = expectRawProblem(
        await post('{"name":"sur","plan":"ok","labels":{"team":"a\\ud800b"}}'),
        422,
        'VALIDATION',
      );
      expect(p.errors).toEqual([{ field: 'labels.team', reason: expect.stringMatching(/surrogate/) }]);
      expectRawProblem(await post('{"name":"sur","plan":"ok","params":{"x":["\\udc00"]}}'), 422);
      expectRawProblem(await post('{"name":"sur","plan":"ok","labels":{"\\ud83d":"x"}}'), 422);
      const torn = await request(
        port,
        'POST',
        '/v1/deployments/victim/teardown',
        { host: self },
        '{"confirm":"victim","force":false,"x":"\\udfff"}',
      );
      expectRawProblem(torn, 422, 'VALIDATION');
    });
  });

  it('paired surrogates (emoji) and large finite numbers are still accepted', async () => {
    const res = await post(
      '{"name":"emoji","plan":"ok","labels":{"team":"\\ud83d\\ude80 x"},"params":{"n":1e300}}',
    );
    expect(res.status, res.body).toBe(201);
    const d = JSON.parse(res.body);
    expect(d.labels.team).toBe('🚀 x');
    expect(d.params.n).toBe(1e300);
  });
});

describe('server.allowed_hosts in the config', () => {
  const base = { plans: {} };
  it('takes names, name:port and [v6]:port, in lower case', () => {
    const c = configFromObject({
      ...base,
      server: { allowed_hosts: ['Lifeline.Example', 'x.example:8443', '[::1]:9'] },
    });
    expect(c.server.allowedHosts).toEqual(['lifeline.example', 'x.example:8443', '[::1]:9']);
    expect(configFromObject(base).server.allowedHosts).toBeUndefined();
  });
  it('refuses URLs, wildcards and non-lists, naming the field', () => {
    for (const bad of [['https://x.example'], ['*.example'], ['x.example/'], 'x.example', [7]]) {
      let err: unknown;
      try {
        configFromObject({ ...base, server: { allowed_hosts: bad } });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).toBeInstanceOf(ConfigError);
      expect(String((err as Error).message)).toMatch(/server\.allowed_hosts/);
    }
  });
});
