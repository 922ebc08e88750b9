// Cross-instance wake-up bench (issue 7): two instances on one Postgres database; a stream served by A
// over a real socket on 127.0.0.1; deployments created through B. Reports commit-to-receipt: from B's
// commit (its in-process wake-up, right after COMMIT returns) to the frame's arrival at A's client. A's
// safety poll is set to a minute, so every receipt is a LISTEN/NOTIFY wake-up. Target p99 < 50 ms.
// Postgres: LIFELINE_BENCH_PG_URL (a server it may create a database on), else a throwaway cluster.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import pino from 'pino';
import { configFromObject } from '../src/config/load.ts';
import { streamRoutes } from '../src/http/stream.ts';
import { openLifeline, type Lifeline } from '../src/lifecycle/engine.ts';
import { ensureDatabase, PgCluster } from '../test/helpers/pg.ts';
import { percentile, type Row } from './stats.ts';

const ACTOR = { name: 'bench', role: 'admin' } as const;
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function instance(dir: string, db: string): Promise<Lifeline> {
  const config = configFromObject(
    { data_dir: dir, db, plans: { ok: { deploy: ['/bin/true'], teardown: ['/bin/true'] } } },
    { file: null, baseDir: dir, env: {} },
  );
  const engine = await openLifeline({ config, logger: pino({ level: 'silent' }) });
  await engine.start();
  return engine;
}

/** Arrival time of every event frame on a stream, by seq. */
function listen(url: string, arrived: Map<number, number>): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        const t = now();
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const id = /^id: (\d+)$/m.exec(frame);
          if (id && /^event: /m.test(frame)) arrived.set(Number(id[1]), t);
        }
      });
      resolve(req);
    });
    req.on('error', reject);
  });
}

export async function benchNotify(tmp: string, quick: boolean): Promise<Row[]> {
  const given = process.env.LIFELINE_BENCH_PG_URL;
  const cluster = given ? null : await PgCluster.create();
  const dir = fs.mkdtempSync(path.join(tmp ?? os.tmpdir(), 'notify-'));
  try {
    const db = await ensureDatabase(given ?? cluster!.url, `lifeline_bench_notify_${process.pid}`);
    const a = await instance(path.join(dir, 'a'), db);
    const b = await instance(path.join(dir, 'b'), db);
    const app = Fastify({ logger: false });
    await app.register(streamRoutes, { api: a, pollMs: 60_000 });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no address');

    const committed = new Map<number, number>();
    const off = b.onEvents((lastSeq) => {
      if (lastSeq !== undefined) committed.set(lastSeq, now());
    });
    const arrived = new Map<number, number>();
    const req = await listen(`http://127.0.0.1:${addr.port}/v1/events/stream`, arrived);
    await sleep(300); // the stream goes live

    const n = quick ? 100 : 400;
    for (let i = 0; i < n; i++) {
      await b.createDeployment({ name: `n-${i}`, plan: 'ok' }, ACTOR);
      // Spaced out: each commit is a wake-up of its own, not a batch read by an earlier one.
      await sleep(10);
    }
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline && [...committed.keys()].some((s) => !arrived.has(s))) await sleep(20);
    off();
    req.destroy();
    await app.close();
    await a.close();
    await b.close();

    const lat: number[] = [];
    let missed = 0;
    for (const [seq, t] of committed) {
      const r = arrived.get(seq);
      if (r === undefined) missed++;
      else lat.push(r - t);
    }
    return [
      {
        name: `B commit -> A stream (${committed.size} commits)`,
        p50: percentile(lat, 50),
        p99: percentile(lat, 99),
        target: 'p99 < 50',
        note: `${missed} not received within 5 s (the poll is 60 s)`,
      },
    ];
  } finally {
    await cluster?.destroy();
  }
}
