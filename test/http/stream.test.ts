// The event stream of SPEC §3 over a real socket: headers at once, replay then live, Last-Event-ID,
// filters, keepalive, back-pressure, many subscribers, reconnect across a server restart, shutdown.
import { createHash } from 'node:crypto';
import http from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import type { LifelineConfig } from '../../src/config/types.ts';
import { EVENT_TYPES, type LifelineEvent } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { buildApp } from '../../src/http/app.ts';
import { sendProblem, toProblem } from '../../src/http/problem.ts';
import { streamRoutes, type StreamRoutesOptions } from '../../src/http/stream.ts';
import { DIALECTS, OPERATOR, startEngine, tempDir, testConfig, waitFor } from '../helpers/engine.ts';
import { contiguous, getOnce, openSse, type SseReader } from '../helpers/sse.ts';

type StreamApi = StreamRoutesOptions['api'];

/**
 * The real app (auth, problem+json, request ids) listening on a real socket. Plugin options such as a
 * short keepalive interval are not reachable through buildApp; with `plugin`, the stream routes are
 * mounted alone on a bare Fastify instance with the same error mapping.
 */
async function serve(
  api: StreamApi,
  opts: { port?: number; plugin?: Omit<StreamRoutesOptions, 'api'>; config?: LifelineConfig } = {},
): Promise<{ app: FastifyInstance; base: string }> {
  let app: FastifyInstance;
  if (opts.plugin) {
    app = Fastify({ logger: false });
    app.setErrorHandler((err, req, reply) => sendProblem(reply, toProblem(err, req)));
    await app.register(streamRoutes, { api, ...opts.plugin });
  } else {
    app = await buildApp({ api, config: opts.config ?? testConfig(tempDir()), logger: false });
  }
  await app.listen({ port: opts.port ?? 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  return { app, base: `http://127.0.0.1:${addr.port}` };
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const TOKENS = [
  { name: 'watcher', role: 'viewer', token_sha256: sha256('viewer-token') },
  { name: 'ci', role: 'operator', token_sha256: sha256('operator-token') },
];

function track(r: SseReader): SseReader {
  cleanups.push(() => r.close());
  return r;
}

async function allEvents(engine: Lifeline, q: { deployment?: string; types?: LifelineEvent['type'][] } = {}) {
  const out: LifelineEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await engine.listEvents({ ...q, after, limit: 1000 });
    out.push(...page.items);
    if (page.items.length < 1000) return out;
    after = page.next_after;
  }
}

async function lastSeq(engine: Lifeline): Promise<number> {
  const all = await allEvents(engine);
  return all.length ? all[all.length - 1].seq : 0;
}

async function deployAndWait(engine: Lifeline, name: string, plan = 'ok'): Promise<void> {
  await engine.createDeployment({ name, plan }, OPERATOR);
  await engine.startDeploy(name, {}, OPERATOR);
  await waitFor(async () => (await engine.getDeployment(name)).state === 'ready', `${name} ready`);
}

describe.each(DIALECTS)('event stream (%s)', (dialect) => {
  async function setup(
    opts: { plugin?: Omit<StreamRoutesOptions, 'api'>; auth?: boolean } = {},
    wrap?: (e: Lifeline) => StreamApi,
  ) {
    const dir = tempDir();
    const engine = await startEngine(dir, {}, dialect);
    cleanups.push(() => engine.close());
    const config = opts.auth ? testConfig(dir, { auth: { tokens: TOKENS } }) : testConfig(dir);
    const { app, base } = await serve(wrap ? wrap(engine) : engine, { plugin: opts.plugin, config });
    cleanups.push(() => app.close());
    return { dir, engine, app, base };
  }

  it('sends the headers at once, before any event, with an empty table', async () => {
    const { base } = await setup();
    const t0 = Date.now();
    const r = track(await openSse(`${base}/v1/events/stream`));
    const elapsed = Date.now() - t0;
    expect(r.status).toBe(200);
    expect(r.header('content-type')).toBe('text/event-stream');
    expect(r.header('cache-control')).toBe('no-cache');
    expect(r.header('x-accel-buffering')).toBe('no');
    expect(r.header('connection')).toBe('keep-alive');
    expect(elapsed).toBeLessThan(1000);
    await r.until((x) => x.frames.length > 0, 'retry frame');
    expect(r.frames[0]).toEqual({ id: undefined, event: undefined, data: '', retry: 1000 });
    expect(r.events).toEqual([]);
    expect(r.header('x-request-id')).toBeTruthy();
  });

  it('replays, then follows live: every event in seq order, no gap, as in the table', async () => {
    const { engine, base } = await setup();
    await engine.createDeployment({ name: 'web-1', plan: 'ok' }, OPERATOR);
    const r = track(await openSse(`${base}/v1/events/stream`));
    await r.untilSeq(1);
    expect(r.events[0].type).toBe('deployment_created');
    await engine.startDeploy('web-1', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('web-1')).state === 'ready', 'ready');
    const table = await allEvents(engine);
    await r.untilSeq(table[table.length - 1].seq);
    expect(r.events).toEqual(table);
    expect(contiguous(r.seqs)).toBe(true);
    const frames = r.frames.filter((f) => f.event);
    expect(frames.every((f, i) => f.id === String(table[i].seq) && f.event === table[i].type)).toBe(true);
    expect(
      r.events.some(
        (e) => e.type === 'state_transition' && e.data.entity === 'deployment' && e.data.to === 'ready',
      ),
    ).toBe(true);
  });

  it('resumes with Last-Event-ID at exactly the next seq, and Last-Event-ID beats after', async () => {
    const { engine, base } = await setup();
    await deployAndWait(engine, 'web-1');
    const table = await allEvents(engine);
    const last = table[table.length - 1].seq;
    expect(last).toBeGreaterThan(6);

    const a = track(await openSse(`${base}/v1/events/stream`, { headers: { 'last-event-id': '4' } }));
    await a.untilSeq(last);
    expect(a.seqs).toEqual(table.filter((e) => e.seq > 4).map((e) => e.seq));

    const b = track(await openSse(`${base}/v1/events/stream?after=2`, { headers: { 'last-event-id': '5' } }));
    await b.untilSeq(last);
    expect(b.seqs[0]).toBe(6);
    expect(contiguous(b.seqs, 6)).toBe(true);

    const c = track(await openSse(`${base}/v1/events/stream?after=${last}`));
    await engine.createDeployment({ name: 'web-2', plan: 'ok' }, OPERATOR);
    const now = await allEvents(engine);
    await c.untilSeq(now[now.length - 1].seq);
    expect(c.seqs[0]).toBe(last + 1);
    expect(c.events).toEqual(now.filter((e) => e.seq > last));
  });

  it('refuses bad input with a problem before any stream header', async () => {
    const { base } = await setup();
    const cases: [string, Record<string, string>, number][] = [
      ['/v1/events/stream?after=abc', {}, 422],
      ['/v1/events/stream?after=-1', {}, 422],
      ['/v1/events/stream?after=99999999999999999999', {}, 422],
      ['/v1/events/stream?type=state_transition,bogus', {}, 422],
      ['/v1/events/stream', { 'last-event-id': 'x12' }, 422],
      ['/v1/events/stream?after=1', { 'last-event-id': '-3' }, 422],
      ['/v1/events/stream?deployment=nope', {}, 404],
      ['/v1/deployments/nope/events/stream', {}, 404],
      ['/v1/deployments/nope/events/stream?after=1.5', {}, 422],
    ];
    // HEAD is not served: it would hold the connection for a body that never comes.
    const head = await new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}/v1/events/stream`, { method: 'HEAD', agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(head).toBe(405);
    for (const [url, headers, status] of cases) {
      const res = await getOnce(`${base}${url}`, headers);
      expect({ url, status: res.status }).toEqual({ url, status });
      expect(res.contentType).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(res.body) as { code: string };
      expect(body.code).toBe(status === 404 ? 'NOT_FOUND' : 'VALIDATION');
    }
  });

  it('filters by deployment (both routes) and by comma-separated types', async () => {
    const { engine, base } = await setup();
    await deployAndWait(engine, 'web-1');
    await deployAndWait(engine, 'web-2', 'events');
    const dep2 = await engine.getDeployment('web-2');
    const last = await lastSeq(engine);

    const byPath = track(await openSse(`${base}/v1/deployments/web-2/events/stream`));
    const byQuery = track(await openSse(`${base}/v1/events/stream?deployment=${dep2.id}`));
    const typed = track(await openSse(`${base}/v1/events/stream?type=state_transition,attempt_end`));
    const both = track(
      await openSse(`${base}/v1/deployments/${dep2.id}/events/stream?type=runner_event&after=0`),
    );

    const dep2Events = await allEvents(engine, { deployment: 'web-2' });
    const typedEvents = await allEvents(engine, { types: ['state_transition', 'attempt_end'] });
    const runnerEvents = await allEvents(engine, { deployment: 'web-2', types: ['runner_event'] });
    expect(runnerEvents.length).toBeGreaterThan(0);

    await byPath.untilSeq(dep2Events[dep2Events.length - 1].seq);
    await byQuery.untilSeq(dep2Events[dep2Events.length - 1].seq);
    await typed.untilSeq(typedEvents[typedEvents.length - 1].seq);
    await both.untilSeq(runnerEvents[runnerEvents.length - 1].seq);
    expect(byPath.events).toEqual(dep2Events);
    expect(byQuery.events).toEqual(dep2Events);
    expect(typed.events).toEqual(typedEvents);
    expect(both.events).toEqual(runnerEvents);
    expect(byPath.events.every((e) => e.deployment_id === dep2.id)).toBe(true);

    // Live, filtered: an event for web-1 does not show on web-2's stream; one for web-2 does.
    await engine.startDeploy('web-1', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('web-1')).state === 'ready', 'web-1 ready');
    await engine.startDeploy('web-2', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('web-2')).state === 'ready', 'web-2 ready');
    const after = await allEvents(engine, { deployment: 'web-2' });
    await byPath.untilSeq(after[after.length - 1].seq);
    expect(byPath.events).toEqual(after);
    expect(after[after.length - 1].seq).toBeGreaterThan(last);
  });

  it('needs a viewer token (401 before any stream header), and a viewer may stream', async () => {
    const { engine, base } = await setup({ auth: true });
    await engine.createDeployment({ name: 'web-1', plan: 'ok' }, OPERATOR);
    for (const url of ['/v1/events/stream', '/v1/deployments/web-1/events/stream']) {
      const anon = await getOnce(`${base}${url}`);
      expect(anon.status).toBe(401);
      expect(anon.contentType).toMatch(/^application\/problem\+json/);
      const bad = await getOnce(`${base}${url}`, { authorization: 'Bearer nope' });
      expect(bad.status).toBe(401);
      const r = track(await openSse(`${base}${url}`, { headers: { authorization: 'Bearer viewer-token' } }));
      expect(r.status).toBe(200);
      await r.untilSeq(1);
      expect(r.events[0].type).toBe('deployment_created');
    }
  });

  it('sends keepalive comments at the configured interval', async () => {
    const { base } = await setup({ plugin: { keepaliveMs: 100 } });
    const r = track(await openSse(`${base}/v1/events/stream`));
    await r.until((x) => x.comments.filter((c) => c === 'keepalive').length >= 3, '3 keepalives', 5000);
  });

  it('delivers through the poll when the notifier never wakes the stream', async () => {
    const { engine, base } = await setup({}, (e) => {
      const api = Object.create(e) as StreamApi;
      api.onEvents = () => () => undefined; // a notifier that never fires
      return api;
    });
    const r = track(await openSse(`${base}/v1/events/stream`));
    await deployAndWait(engine, 'web-1');
    const table = await allEvents(engine);
    await r.untilSeq(table[table.length - 1].seq, 5000); // the default poll is 1 s
    expect(r.events).toEqual(table);
  });

  it('respects back-pressure: a client that stops reading still gets every event, in order', async () => {
    const { engine, base } = await setup();
    let resume!: () => void;
    const paused = new Promise<void>((res) => (resume = res));
    const r = track(await openSse(`${base}/v1/events/stream`, { paused }));
    await engine.createDeployment({ name: 'big', plan: 'lines' }, OPERATOR);
    await engine.startDeploy('big', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('big')).state === 'ready', 'big ready', 60_000);
    resume();
    const last = await lastSeq(engine);
    expect(last).toBeGreaterThan(10_000);
    await r.untilSeq(last, 60_000);
    expect(contiguous(r.seqs)).toBe(true);
    expect(r.seqs.length).toBe(last);
  }, 120_000);

  it('streams opened while events are being written replay and go live with no gap', async () => {
    const { engine, base } = await setup();
    await engine.createDeployment({ name: 'big', plan: 'lines' }, OPERATOR);
    await engine.startDeploy('big', {}, OPERATOR);
    const readers: SseReader[] = [];
    for (let i = 0; i < 4; i++) {
      // Each one starts at a different point of the write: its replay races the commits.
      await waitFor(
        async () => (await lastSeq(engine)) > 1000 * (i + 1) || i === 3,
        `>${1000 * (i + 1)} events`,
      );
      readers.push(track(await openSse(`${base}/v1/events/stream${i % 2 ? '?after=0' : ''}`)));
    }
    await waitFor(async () => (await engine.getDeployment('big')).state === 'ready', 'big ready', 60_000);
    const last = await lastSeq(engine);
    await Promise.all(readers.map((r) => r.untilSeq(last, 60_000)));
    for (const r of readers) {
      expect(r.seqs.length).toBe(last);
      expect(contiguous(r.seqs)).toBe(true);
    }
  }, 120_000);

  it('releases the notifier and timers when the clients go away', async () => {
    let subscribed = 0;
    const { base } = await setup({}, (e) => {
      const api = Object.create(e) as StreamApi;
      api.onEvents = (l) => {
        subscribed++;
        const off = e.onEvents(l);
        return () => {
          subscribed--;
          off();
        };
      };
      return api;
    });
    const streams = await Promise.all([1, 2, 3].map(() => openSse(`${base}/v1/events/stream`)));
    // The streams share one reader, hence one subscription to the notifier.
    await waitFor(() => subscribed === 1, 'the shared subscription');
    expect(subscribed).toBe(1);
    const t0 = Date.now();
    for (const s of streams) s.close();
    await waitFor(() => subscribed === 0, 'subscriptions released', 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('200 concurrent subscribers all receive the same sequence', async () => {
    const { engine, base } = await setup();
    await engine.createDeployment({ name: 'web-1', plan: 'ok' }, OPERATOR);
    const readers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        openSse(`${base}/v1/events/stream${i % 2 ? '' : '?after=0'}`).then(track),
      ),
    );
    await engine.startDeploy('web-1', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('web-1')).state === 'ready', 'ready');
    await deployAndWait(engine, 'web-2');
    const table = await allEvents(engine);
    const last = table[table.length - 1].seq;
    await Promise.all(readers.map((r) => r.untilSeq(last, 30_000)));
    const expected = table.map((e) => e.seq);
    for (const r of readers) expect(r.seqs).toEqual(expected);
  }, 90_000);

  it('ends the stream (the client resumes) when the store fails under it', async () => {
    const dir = tempDir();
    const engine = await startEngine(dir, {}, dialect);
    cleanups.push(() => engine.close());
    const { app, base } = await serve(engine, { config: testConfig(dir) });
    cleanups.push(() => app.close());
    await engine.createDeployment({ name: 'web-1', plan: 'ok' }, OPERATOR);
    const r = track(await openSse(`${base}/v1/events/stream`));
    await r.untilSeq(1);
    await engine.close(); // the next read (the 1 s poll at the latest) fails
    await r.until((x) => x.ended, 'stream end', 5000);
    expect(r.error).toBeNull();
  });

  it('app.close() with open streams resolves promptly and ends them', async () => {
    const dir = tempDir();
    const engine = await startEngine(dir, {}, dialect);
    cleanups.push(() => engine.close());
    const { app, base } = await serve(engine, { config: testConfig(dir) });
    const readers = await Promise.all([1, 2, 3, 4, 5].map(() => openSse(`${base}/v1/events/stream`)));
    await Promise.all(readers.map((r) => r.until((x) => x.frames.length > 0, 'retry')));
    const t0 = Date.now();
    await app.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    await Promise.all(readers.map((r) => r.done));
    expect(readers.every((r) => r.ended && r.error === null)).toBe(true);
  });

  it('an EventSource client resumes across a server restart with no gap and no duplicate', async () => {
    const dir = tempDir();
    let engine = await startEngine(dir, {}, dialect);
    let server = await serve(engine, { config: testConfig(dir) });
    const port = Number(new URL(server.base).port);
    const stop = async () => {
      await server.app.close();
      await engine.close();
    };
    cleanups.push(() => stop());

    const seen: { seq: number; id: string }[] = [];
    let opens = 0;
    const es = new EventSource(`${server.base}/v1/events/stream`);
    cleanups.push(() => es.close());
    es.addEventListener('open', () => opens++);
    const onEvent = (ev: MessageEvent<string>) =>
      seen.push({ seq: (JSON.parse(ev.data) as LifelineEvent).seq, id: ev.lastEventId });
    for (const t of EVENT_TYPES) {
      es.addEventListener(t, onEvent);
    }

    await deployAndWait(engine, 'before');
    const beforeLast = await lastSeq(engine);
    await waitFor(() => seen.some((s) => s.seq === beforeLast), 'events before restart');
    expect(opens).toBe(1);

    await stop();
    // Written while no server listens: the client must get them on reconnect, from its Last-Event-ID.
    engine = await startEngine(dir, {}, dialect);
    await engine.createDeployment({ name: 'offline', plan: 'ok' }, OPERATOR);
    server = await serve(engine, { config: testConfig(dir), port });
    await waitFor(() => opens >= 2, 'reconnect', 20_000);

    await deployAndWait(engine, 'after');
    const table = await allEvents(engine);
    const last = table[table.length - 1].seq;
    expect(last).toBeGreaterThan(beforeLast + 1);
    await waitFor(() => seen.some((s) => s.seq === last), 'events after restart');
    expect(seen.map((s) => s.seq)).toEqual(table.map((e) => e.seq));
    expect(seen.every((s) => s.id === String(s.seq))).toBe(true);
  }, 60_000);
});
