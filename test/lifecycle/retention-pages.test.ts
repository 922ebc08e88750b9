// Retention archives an attempt page by page (issue 17 point 12), on both stores: an attempt spanning
// many pages reads back byte for byte after retention (log ranges, tails, phases, the archived events),
// and the archiver never reads more than one page of rows at once.
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import type { RetentionHooks } from '../../src/lifecycle/retention.ts';
import { selectArchivedEvents } from '../../src/store/archive.ts';
import { DIALECTS, dbUrlFor, type TestDialect } from '../helpers/dialect.ts';
import { ADMIN, FIXTURES, fixturePlans, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers) await c().catch(() => undefined);
});

async function node(dir: string, db: string, hooks?: RetentionHooks) {
  const chatty = path.join(FIXTURES, 'chatty.sh');
  const config = configFromObject(
    {
      data_dir: dir,
      db,
      durable_commits: false,
      retention: { logs: '30d' },
      plans: {
        ...fixturePlans(),
        chatty: { deploy: [chatty], teardown: [chatty], env: { LINES_COUNT: '1500' } },
      },
    },
    { file: null, baseDir: dir, env: {} },
  );
  const engine: Lifeline = await openLifeline({ config, logger: quietLogger(), retentionHooks: hooks });
  await engine.start();
  const app: FastifyInstance = await buildApp({ api: engine, config, logger: false });
  const close = async () => {
    await app.close();
    await engine.close();
  };
  closers.push(close);
  return { engine, app, close };
}

/** What the log route and the phases route answer: pages, mid-line ranges, tails, past the end. */
async function probe(app: FastifyInstance, id: string): Promise<string[]> {
  const out: string[] = [];
  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url });
    expect(r.statusCode, r.body).toBe(200);
    out.push(`${url} -> ${r.headers['lifeline-next-offset']} ${r.rawPayload.toString('base64')}`);
    return r;
  };
  for (let off = 0; ;) {
    const r = await get(`/v1/attempts/${id}/log?offset=${off}&limit=30000`);
    if (r.rawPayload.length === 0) break;
    off = Number(r.headers['lifeline-next-offset']);
  }
  for (const q of ['offset=1234&limit=777', 'offset=70001&limit=100', 'tail=7', 'tail=1', 'offset=999999999'])
    await get(`/v1/attempts/${id}/log?${q}`);
  await get(`/v1/attempts/${id}/phases`);
  return out;
}

describe.each(DIALECTS)('retention in pages on %s', (dialect: TestDialect) => {
  it('archives an attempt of many pages reading one page at a time; reads back byte for byte', async () => {
    const dir = tempDir('lifeline-retention-pages-');
    const db = await dbUrlFor(dialect, dir);
    const pages: number[] = [];
    const n = await node(dir, db, { pageRows: 100, onPage: (rows) => pages.push(rows) });
    const dep = await n.engine.createDeployment({ name: 'pages', plan: 'chatty' }, ADMIN);
    const att = await n.engine.startDeploy('pages', {}, ADMIN);
    await waitFor(async () => (await n.engine.getDeployment('pages')).state === 'ready', 'pages ready');
    await n.engine.settle();
    const d = n.engine.store.db;
    const rows = await d
      .selectFrom('events')
      .select(['seq', 'at', 'type', 'data', 'log_offset'])
      .where('attempt_id', '=', att.id)
      .where('type', 'in', ['log_line', 'runner_event'])
      .orderBy('seq')
      .execute();
    expect(rows.length).toBeGreaterThan(1500);
    // What the archive must hold: each event, a log_line's text replaced by its offset in the log.
    const expected = rows.map((r) => {
      const data = JSON.parse(r.data) as Record<string, unknown>;
      return r.type === 'log_line'
        ? { seq: Number(r.seq), at: r.at, type: r.type, stream: data.stream, offset: Number(r.log_offset) }
        : { seq: Number(r.seq), at: r.at, type: r.type, data };
    });
    await d
      .updateTable('attempts')
      .set({ ended_at: new Date(Date.now() - 40 * 86_400_000).toISOString() })
      .where('deployment_id', '=', dep.id)
      .execute();
    const before = await probe(n.app, att.id); // after ended_at moved: the last phase ends with it
    pages.length = 0;
    await n.engine.retention.pass();

    const left = await d
      .selectFrom('events')
      .select('seq')
      .where('attempt_id', '=', att.id)
      .where('type', 'in', ['log_line', 'runner_event'])
      .execute();
    expect(left).toHaveLength(0);
    expect(await selectArchivedEvents(d, att.id)).toEqual(expected);
    expect(await probe(n.app, att.id)).toEqual(before);
    const s = await snapshotOf(d);
    expectStoreInvariants(s);
    expectAttemptHistories(s);
    // Never more than one page read at once, and the attempt took many of them.
    expect(pages.filter((p) => p > 0).length).toBeGreaterThanOrEqual(Math.ceil(rows.length / 100));
    expect(Math.max(...pages)).toBeLessThanOrEqual(100);
    await n.close();
  }, 120_000);
});
