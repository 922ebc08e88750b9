// Stack routes (SPEC §12.5) on both stores: roles, create 201 with ETag, 409 naming a taken name, 422
// naming the field with nothing written, PUT with If-Match (412), DELETE (admin, 204), Idempotency-Key,
// and the stack= filter of events and streams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/engine.ts';
import { openSse } from '../helpers/sse.ts';
import { bearer, expectProblem, harness, json, snapshot, waitState, type Harness } from './helpers.ts';

const spec = (name: string) => ({
  name,
  labels: { course: 'sec-101' },
  units: [
    { key: 'net', plan: 'ok' },
    { key: 'vm', plan: 'secret', count: 2, params: { password: 'hunter2' }, after: ['net'] },
  ],
});

describe.each(DIALECTS)('stack routes on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ dialect, auth: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  const req = (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    role: 'viewer' | 'operator' | 'admin',
    payload?: unknown,
    headers: Record<string, string> = {},
  ) => h.app.inject({ method, url, payload: payload as never, headers: { ...bearer(role), ...headers } });

  it('create (operator), read (viewer), list; secrets masked in the spec', async () => {
    expectProblem(await req('POST', '/v1/stacks', 'viewer', spec('h1')), 403, 'FORBIDDEN');
    const res = await req('POST', '/v1/stacks', 'operator', spec('h1'));
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/v1/stacks/h1');
    expect(res.headers.etag).toBe('"1"');
    const s = json(res);
    expect(s.state).toBe('pending');
    expect(s.units.map((u: { deployment: string }) => u.deployment)).toEqual([
      'h1-net',
      'h1-vm-1',
      'h1-vm-2',
    ]);
    expect(JSON.stringify(s)).not.toContain('hunter2');
    const got = await req('GET', '/v1/stacks/h1', 'viewer');
    expect(got.statusCode).toBe(200);
    expect(got.headers.etag).toBe('"1"');
    expect(json(got).units[1]).toMatchObject({
      key: 'vm',
      index: 1,
      state: 'pending',
      outputs: {},
      depth: 1,
    });
    const list = json(await req('GET', '/v1/stacks?limit=10', 'viewer'));
    expect(list.items.map((x: { name: string }) => x.name)).toContain('h1');
    expectProblem(await req('GET', '/v1/stacks/nope', 'viewer'), 404, 'NOT_FOUND');
  });

  it('taken names: 409 STACK_EXISTS / DEPLOYMENT_EXISTS naming it; malformed: 422 naming the field; nothing written', async () => {
    await req('POST', '/v1/deployments', 'operator', { name: 'h2-vm-1', plan: 'ok' });
    const before = await snapshot(h.engine);
    expectProblem(await req('POST', '/v1/stacks', 'operator', spec('h1')), 409, 'STACK_EXISTS');
    const taken = expectProblem(
      await req('POST', '/v1/stacks', 'operator', spec('h2')),
      409,
      'DEPLOYMENT_EXISTS',
    );
    expect(taken.detail).toContain('h2-vm-1');
    const bad: [unknown, string][] = [
      [{ ...spec('h3'), units: [{ key: 'a', plan: 'ok', after: ['b'] }] }, 'units[0].after[0]'],
      [{ ...spec('h3'), units: [{ key: 'a', plan: 'ok', count: 101 }] }, 'units[0].count'],
      [{ ...spec('h3'), units: [{ key: 'a', plan: 'nope' }] }, 'units[0].plan'],
      [{ ...spec('h3'), name: 'H3' }, 'name'],
      [
        { ...spec('h3'), units: [{ key: 'a', plan: 'secret', params: { replicas: 'x' } }] },
        'units[0].params.replicas',
      ],
    ];
    for (const [body, field] of bad) {
      const p = expectProblem(await req('POST', '/v1/stacks', 'operator', body), 422, 'VALIDATION');
      expect(p.errors!.map((e: { field: string }) => e.field)).toContain(field);
    }
    expect(await snapshot(h.engine)).toEqual(before);
  });

  it('PUT needs the current version with If-Match; DELETE is admin, 409 until torn down or forced', async () => {
    await req('POST', '/v1/stacks', 'operator', spec('h4'));
    const next = { ...spec('h4'), units: [...spec('h4').units, { key: 'fin', plan: 'ok', after: ['vm'] }] };
    expectProblem(
      await req('PUT', '/v1/stacks/h4', 'operator', next, { 'if-match': '"7"' }),
      412,
      'VERSION_MISMATCH',
    );
    const put = await req('PUT', '/v1/stacks/h4', 'operator', next, { 'if-match': '"1"' });
    expect(put.statusCode).toBe(200);
    expect(Number(JSON.parse(put.headers.etag as string))).toBeGreaterThan(1);
    expect(json(put).units.map((u: { deployment: string }) => u.deployment)).toContain('h4-fin');
    // A unit that stands blocks its removal and the stack's delete.
    await req('POST', '/v1/deployments/h4-net/attempts', 'operator', {});
    await waitState(h.app, 'h4-net', 'ready', bearer('viewer'));
    const drop = {
      ...spec('h4'),
      units: [{ key: 'vm', plan: 'secret', count: 2, params: { password: 'hunter2' } }],
    };
    const refused = expectProblem(
      await req('PUT', '/v1/stacks/h4', 'operator', drop),
      409,
      'UNIT_NOT_TORN_DOWN',
    );
    expect(refused.detail).toContain('h4-net (ready)');
    expectProblem(await req('DELETE', '/v1/stacks/h4', 'operator'), 403, 'FORBIDDEN');
    expectProblem(await req('DELETE', '/v1/stacks/h4', 'admin'), 409, 'UNIT_NOT_TORN_DOWN');
    expectProblem(await req('DELETE', '/v1/deployments/h4-vm-1', 'admin'), 409, 'INVALID_TRANSITION');
    expect((await req('DELETE', '/v1/stacks/h4?force=true', 'admin')).statusCode).toBe(204);
    expectProblem(await req('GET', '/v1/stacks/h4', 'viewer'), 404, 'NOT_FOUND');
    expectProblem(await req('GET', '/v1/deployments/h4-net', 'viewer'), 404, 'NOT_FOUND');
  });

  it('PUT gives every unit the stack labels as they now are, kept units too', async () => {
    await req('POST', '/v1/stacks', 'operator', spec('h7'));
    const next = { ...spec('h7'), labels: { course: 'sec-102', term: 'spring' } };
    expect((await req('PUT', '/v1/stacks/h7', 'operator', next)).statusCode).toBe(200);
    for (const name of ['h7-net', 'h7-vm-1', 'h7-vm-2']) {
      const dep = json(await req('GET', `/v1/deployments/${name}`, 'viewer'));
      expect(dep.labels).toMatchObject({ course: 'sec-102', term: 'spring', 'lifeline.stack': 'h7' });
    }
    const listed = json(await req('GET', '/v1/deployments?label=course%3Dsec-102&limit=100', 'viewer'));
    expect(listed.items.map((d: { name: string }) => d.name).sort()).toEqual([
      'h7-net',
      'h7-vm-1',
      'h7-vm-2',
    ]);
  });

  it('Idempotency-Key: a retried create gets the first response and writes nothing more', async () => {
    const key = { 'idempotency-key': 'stack-h5' };
    const first = await req('POST', '/v1/stacks', 'operator', spec('h5'), key);
    expect(first.statusCode).toBe(201);
    const before = await snapshot(h.engine);
    const again = await req('POST', '/v1/stacks', 'operator', spec('h5'), key);
    expect(again.statusCode).toBe(201);
    expect(json(again).id).toBe(json(first).id);
    expect(await snapshot(h.engine)).toEqual(before);
  });

  it('events and streams filter by stack', async () => {
    const s = json(await req('POST', '/v1/stacks', 'operator', spec('h6')));
    await req('POST', '/v1/deployments/h6-net/attempts', 'operator', {});
    await waitState(h.app, 'h6-net', 'ready', bearer('viewer'));
    const page = json(await req('GET', '/v1/events?stack=h6&limit=1000', 'viewer'));
    expect(page.items.length).toBeGreaterThan(8);
    expect(page.items.every((e: { stack_id: string }) => e.stack_id === s.id)).toBe(true);
    const types = new Set(page.items.map((e: { type: string }) => e.type));
    expect(types).toContain('attempt_end');
    const byId = json(await req('GET', `/v1/events?stack=${s.id}&limit=1000`, 'viewer'));
    expect(byId.items).toEqual(page.items);
    expectProblem(await req('GET', '/v1/events?stack=nope', 'viewer'), 404, 'NOT_FOUND');
    // The stream (a real socket) replays the same events and nothing else.
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = h.app.server.address() as { port: number };
    const r = await openSse(`http://127.0.0.1:${addr.port}/v1/events/stream?stack=h6`, {
      headers: bearer('viewer'),
    });
    try {
      await r.untilSeq(page.items[page.items.length - 1].seq);
      expect(r.events).toEqual(page.items);
    } finally {
      r.close();
    }
  });
});
