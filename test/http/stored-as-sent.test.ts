// Issue 17 (13, 15, 16, 17) on both stores: what would be stored other than it was sent is refused with a
// 422 naming the field (NUL, duplicate keys, invalid UTF-8, integers past 2^53), a cursor past the last
// seq is refused instead of leaving its reader deaf, and a token in the query string never reaches a log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/engine.ts';
import { expectProblem, harness, json, quiesce, snapshot, type Harness } from './helpers.ts';

describe.each(DIALECTS)('on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ dialect, captureLogs: true });
    const res = await h.app.inject({
      method: 'POST',
      url: '/v1/deployments',
      payload: { name: 'base', plan: 'ok' },
    });
    expect(res.statusCode, res.body).toBe(201);
    await quiesce(h.engine);
  });
  afterAll(async () => {
    await h?.close();
  });

  const raw = (payload: string | Buffer, url = '/v1/deployments') =>
    h.app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });

  /** The request is a 422 naming `field`, and the store is unchanged. */
  async function refused(payload: string | Buffer, field: string, reason: RegExp, url?: string) {
    const before = await snapshot(h.engine);
    const p = expectProblem(await raw(payload, url), 422, 'VALIDATION');
    expect(p.errors).toEqual([{ field, reason: expect.stringMatching(reason) }]);
    expect(await snapshot(h.engine)).toEqual(before);
  }

  it('refuses NUL in a label value, a param, a key and a name', async () => {
    await refused('{"name":"nul","plan":"ok","labels":{"team":"a\\u0000b"}}', 'labels.team', /NUL/);
    await refused('{"name":"nul","plan":"ok","params":{"x":["\\u0000"]}}', 'params.x.0', /NUL/);
    await refused('{"name":"nul","plan":"ok","labels":{"a\\u0000":"x"}}', 'labels', /key with a NUL/);
    await refused('{"name":"n\\u0000l","plan":"ok"}', 'name', /NUL/);
    await refused('{"confirm":"base","x":"\\u0000"}', 'x', /NUL/, '/v1/deployments/base/teardown');
  });

  it('refuses a key given twice, at any depth', async () => {
    await refused('{"name":"dup-a","name":"dup-b","plan":"ok"}', 'name', /more than once/);
    await refused(
      '{"name":"dup","plan":"ok","params":{"replicas":1,"other":[{"k":1,"k":2}],"replicas":2}}',
      'params.other.0.k',
      /more than once/,
    );
    await refused(
      '{"name":"dup","plan":"ok","labels":{"a":"1","\\u0061":"2"}}',
      'labels.a',
      /more than once/,
    );
  });

  it('refuses a body that is not valid UTF-8', async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"name":"utf","plan":"ok","labels":{"team":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}}'),
    ]);
    await refused(bytes, 'body', /UTF-8/);
  });

  it('refuses integers a double would round, and keeps the ones it holds', async () => {
    await refused('{"name":"big","plan":"ok","params":{"n":9007199254740993}}', 'params.n', /2^53|rounded/);
    await refused(
      '{"name":"big","plan":"ok","params":{"n":[-12345678901234567891]}}',
      'params.n.0',
      /rounded/,
    );
    const ok = await raw('{"name":"big-ok","plan":"ok","params":{"n":9007199254740992,"m":1e20,"f":0.1}}');
    expect(ok.statusCode, ok.body).toBe(201);
    expect(json(ok).params).toEqual({ n: 9007199254740992, m: 1e20, f: 0.1 });
  });

  it('refuses a stream cursor past the last seq; a page read there is just empty', async () => {
    const last = (await snapshot(h.engine)).lastSeq;
    // A page read past the end is an empty page (the dashboard finds the head that way), not an error.
    const page = await h.app.inject({ method: 'GET', url: `/v1/events?after=${last + 5}` });
    expect(page.statusCode, page.body).toBe(200);
    expect(json(page).items).toEqual([]);
    // A stream is refused before its first header, so EventSource and the CLI see the reason.
    const stream = expectProblem(
      await h.app.inject({
        method: 'GET',
        url: '/v1/events/stream',
        headers: { 'last-event-id': String(last + 1000) },
      }),
      422,
      'VALIDATION',
    );
    expect(stream.errors).toEqual([
      { field: 'Last-Event-ID', reason: expect.stringContaining(String(last)) },
    ]);
    expectProblem(
      await h.app.inject({ method: 'GET', url: `/v1/deployments/base/events/stream?after=${last + 1}` }),
      422,
    );
  });

  it('never logs the value of a query parameter the route does not declare', async () => {
    const secret = 'tok_e2b9f1c7d3';
    await h.app.inject({ method: 'GET', url: `/v1/deployments?access_token=${secret}&limit=5` });
    await h.app.inject({ method: 'GET', url: `/v1/nowhere?token=${secret}` });
    expect(h.logText()).not.toContain(secret);
    const lines = h.logs.filter((l) => l.msg === 'request').map((l) => l.url);
    expect(lines).toContain('/v1/deployments?access_token=[redacted]&limit=5');
    expect(lines).toContain('/v1/nowhere?token=[redacted]');
  });
});
