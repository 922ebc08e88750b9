// The shared stream reader (src/http/fanout.ts) over real sockets: filtered streams resume past what
// they skipped with neither gap nor repeat, many live subscribers share one read per commit and each
// gets every event once and in order, and many clients replaying from 0 all get the whole history, also
// when hundreds connect at the same moment (a reconnect storm) and some leave before their turn.
import Fastify, { type FastifyInstance } from 'fastify';
import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { LifelineEvent } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { buildApp } from '../../src/http/app.ts';
import { sendProblem, toProblem } from '../../src/http/problem.ts';
import { streamRoutes, type StreamRoutesOptions } from '../../src/http/stream.ts';
import { OPERATOR, startEngine, tempDir, testConfig, waitFor } from '../helpers/engine.ts';
import { getOnce, openSse, type SseReader } from '../helpers/sse.ts';

type StreamApi = StreamRoutesOptions['api'];

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  const addr = app.server.address();
  if (!addr || typeof addr === 'string') throw new Error('no address');
  cleanups.push(() => app.close());
  return `http://127.0.0.1:${addr.port}`;
}

/** An engine on fast (non-fsync) commits, so that tests can write thousands of events quickly. */
async function engineOnly(): Promise<Lifeline> {
  const engine = await startEngine(tempDir(), { durable_commits: false });
  cleanups.push(() => engine.close());
  return engine;
}

/** The stream routes alone, with plugin options the full app does not expose. */
async function streamsOnly(api: StreamApi, plugin: Omit<StreamRoutesOptions, 'api'>): Promise<string> {
  const app = Fastify({ logger: false });
  app.setErrorHandler((err, req, reply) => sendProblem(reply, toProblem(err, req)));
  await app.register(streamRoutes, { api, ...plugin });
  return listen(app);
}

function track(r: SseReader): SseReader {
  cleanups.push(() => r.close());
  return r;
}

async function table(engine: Lifeline): Promise<LifelineEvent[]> {
  const out: LifelineEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await engine.listEvents({ after, limit: 1000 });
    out.push(...page.items);
    if (page.items.length < 1000) return out;
    after = page.next_after;
  }
}

/** The `Last-Event-ID` an EventSource would send: the last `id:` field seen, with or without data. */
function lastEventId(r: SseReader): string | undefined {
  for (let i = r.frames.length - 1; i >= 0; i--) if (r.frames[i].id !== undefined) return r.frames[i].id;
  return undefined;
}

/** Waits until the stream has covered `seq` (an event or an id line at or past it); cheap per chunk. */
function covered(r: SseReader, seq: number, timeoutMs = 30_000): Promise<void> {
  return r.until((x) => Number(lastEventId(x) ?? 0) >= seq, `covered ${seq}`, timeoutMs);
}

let names = 0;
async function create(engine: Lifeline, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `d-${++names}`;
    await engine.createDeployment({ name, plan: 'ok' }, OPERATOR);
    out.push(name);
  }
  return out;
}

describe('shared stream reader', () => {
  it('a filtered stream resumed with Last-Event-ID neither misses nor repeats, and does not rescan', async () => {
    const engine = await engineOnly();
    const base = await listen(await buildApp({ api: engine, config: testConfig(tempDir()), logger: false }));
    const url = `${base}/v1/events/stream?type=deployment_deleted`;
    const created = await create(engine, 6);
    await engine.deleteDeployment(created[0], {}, OPERATOR);

    const first = track(await openSse(url));
    await first.until((r) => r.events.length === 1, 'the first delete');
    // Events it does not want follow; the stream's cursor passes them and an id-only line says so.
    await create(engine, 3);
    const head = (await table(engine)).at(-1)!.seq;
    await first.until((r) => lastEventId(r) === String(head), 'an id line at the head', 10_000);
    expect(first.events.map((e) => e.type)).toEqual(['deployment_deleted']);
    first.close();

    // While it is away: matches and non-matches interleave.
    await engine.deleteDeployment(created[1], {}, OPERATOR);
    await create(engine, 2);
    await engine.deleteDeployment(created[2], {}, OPERATOR);

    // The page API agrees: a short filtered page moves next_after to the head, not to its last match.
    const all = await table(engine);
    const page = JSON.parse(
      (await getOnce(`${base}/v1/events?type=deployment_deleted&after=${head}`)).body,
    ) as { items: LifelineEvent[]; next_after: number };
    expect(page.items.map((e) => e.seq)).toEqual(
      all.filter((e) => e.seq > head && e.type === 'deployment_deleted').map((e) => e.seq),
    );
    expect(page.next_after).toBe(all.at(-1)!.seq);

    const resumed = track(await openSse(url, { headers: { 'last-event-id': lastEventId(first)! } }));
    await engine.deleteDeployment(created[3], {}, OPERATOR);
    const deletes = (await table(engine)).filter((e) => e.type === 'deployment_deleted');
    expect(deletes).toHaveLength(4);
    await resumed.untilSeq(deletes[3].seq);
    const seen = [...first.events, ...resumed.events].map((e) => e.seq);
    expect(seen).toEqual(deletes.map((e) => e.seq));
  }, 60_000);

  it('many live subscribers, filtered or not, each get every event once and in order from shared reads', async () => {
    const engine = await engineOnly();
    let reads = 0;
    const api = Object.create(engine) as StreamApi;
    api.listEvents = (q) => {
      reads++;
      return engine.listEvents(q);
    };
    const base = await streamsOnly(api, { batchSize: 100 });
    const [target] = await create(engine, 1);
    const targetId = (await engine.getDeployment(target)).id;
    const kinds = [
      { q: '', want: () => true },
      { q: `?deployment=${target}`, want: (e: LifelineEvent) => e.deployment_id === targetId },
      { q: '?type=deployment_created', want: (e: LifelineEvent) => e.type === 'deployment_created' },
    ];
    const n = 240;
    const readers = await Promise.all(
      Array.from({ length: n }, (_, i) => openSse(`${base}/v1/events/stream${kinds[i % 3].q}`).then(track)),
    );
    // Every reader is live once it has seen an event written after they all connected.
    await engine.deleteDeployment(target, {}, OPERATOR);
    const marker = (await table(engine)).at(-1)!.seq;
    await Promise.all(readers.map((r) => covered(r, marker)));

    reads = 0;
    const commits = 40;
    await create(engine, commits);
    const all = await table(engine);
    const last = all.filter((e) => e.type === 'deployment_created').at(-1)!.seq;
    await Promise.all(readers.map((r, i) => (i % 3 === 1 ? undefined : covered(r, last))));
    for (const [i, r] of readers.entries()) {
      expect(r.seqs, `reader ${i}`).toEqual(all.filter(kinds[i % 3].want).map((e) => e.seq));
    }
    // Shared: at most one read per commit (plus safety polls), where one read per subscriber per
    // commit would be n * commits.
    expect(reads).toBeLessThanOrEqual(commits + 30);
  }, 120_000);

  it('many clients replaying from 0 while events are written each get the whole history in order', async () => {
    const engine = await engineOnly();
    const base = await streamsOnly(engine, { batchSize: 50, replayConcurrency: 2 });
    await create(engine, 400);
    const clients = 150;
    const readers = await Promise.all(
      Array.from({ length: clients }, () => openSse(`${base}/v1/events/stream?after=0`).then(track)),
    );
    // Writes while they replay: some land in history, some arrive live, none twice.
    await create(engine, 30);
    const all = await table(engine);
    const last = all.at(-1)!.seq;
    await Promise.all(readers.map((r) => covered(r, last, 60_000)));
    const expected = all.map((e) => e.seq);
    for (const r of readers) expect(r.seqs).toEqual(expected);
  }, 180_000);

  it('500 streams opened at once, some clients leaving before their turn: each gets the whole history once, in order, and nothing stays open', async () => {
    const engine = await engineOnly();
    const app = await buildApp({ api: engine, config: testConfig(tempDir()), logger: false });
    const base = await listen(app);
    let accepted = 0;
    app.server.on('connection', () => accepted++);
    await create(engine, 600); // more than one replay page (500)
    const expected = (await table(engine)).map((e) => e.seq);
    const last = expected.at(-1)!;
    const { port } = new URL(base);

    // Light readers (the SseReader's per-line parsing is too slow for 500 x 600 frames in one process):
    // the seq of every frame that carries an event, in arrival order.
    const seqs: number[][] = [];
    const reqs: http.ClientRequest[] = [];
    let reached = 0;
    const finished: boolean[] = [];
    let allReached: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allReached = resolve));
    cleanups.push(() => reqs.forEach((r) => r.destroy()));
    const open = (i: number) => {
      seqs[i] = [];
      let tail = '';
      const req = http.get(
        `${base}/v1/events/stream?after=0`,
        { agent: false, headers: { accept: 'text/event-stream' } },
        (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            const text = tail + chunk;
            const cut = text.lastIndexOf('\n\n') + 2;
            tail = text.slice(cut);
            for (const m of text.slice(0, cut).matchAll(/^id: (\d+)\nevent: /gm)) seqs[i].push(Number(m[1]));
            // Counted once: a keepalive after the last event (a run slower than 15 s) must not count it again.
            if (!finished[i] && seqs[i].at(-1) === last) {
              finished[i] = true;
              if (++reached === 500) allReached();
            }
          });
        },
      );
      req.on('error', () => undefined);
      reqs.push(req);
    };
    // 100 more clients, connected beforehand, ask for a stream in the same instant and go at once: their
    // requests and their goodbyes are read together, while the requests still wait their turn.
    const leavers = await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<net.Socket>((resolve, reject) => {
            const s = net.connect(Number(port), '127.0.0.1', () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    // Accepted by the server, so that their requests are read in one go.
    await waitFor(() => accepted >= 100, 'the server accepted them');
    const gone = leavers.map((s) => {
      s.on('error', () => undefined);
      s.resume();
      return new Promise((resolve) => s.on('close', resolve));
    });
    for (const s of leavers)
      s.end(`GET /v1/events/stream?after=0 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    for (let i = 0; i < 500; i++) open(i);
    await Promise.all(gone);
    await done;
    for (const [i, got] of seqs.entries()) expect(got, `reader ${i}`).toEqual(expected);

    // Every stream, served or abandoned, is closed once its client has gone.
    for (const r of reqs) r.destroy();
    const subscribers = async () => {
      const text = (await getOnce(`${base}/metrics`)).body;
      return Number(/^lifeline_stream_subscribers (\d+)$/m.exec(text)?.[1]);
    };
    await waitFor(async () => (await subscribers()) === 0, 'no open stream left', 20_000);
  }, 240_000);
});
