// Appending events: on Postgres the seqs, the NOTIFY and the insert are one statement (events as arrays),
// on SQLite two. Both must store exactly what was appended (any text, nulls, log offsets), number the
// events gap-free in order, and return what they stored.
import { afterEach, describe, expect, it } from 'vitest';
import { insertEvents, selectEvents, selectLastSeq } from '../../src/store/events.ts';
import { migrate, openStore, type Store } from '../../src/store/open.ts';
import type { NewEvent } from '../../src/domain/types.ts';
import { DIALECTS, dbUrlFor } from '../helpers/dialect.ts';
import { tempDir } from '../helpers/engine.ts';

let store: Store | null = null;
afterEach(async () => {
  await store?.close();
  store = null;
});

const tricky = [
  'plain',
  'quote " and backslash \\ and {braces}, commas',
  'NULL',
  '',
  'unicode ✓ ß 日本 \u0001 control',
  "single ' quote",
];

describe.each(DIALECTS)('appending events (%s)', (dialect) => {
  it('stores every event as given, numbered gap-free, and returns what it stored', async () => {
    store = await openStore(await dbUrlFor(dialect, tempDir()), { durable: false });
    await migrate(store.db);
    const head = await selectLastSeq(store.db);
    const batches: NewEvent[][] = [
      tricky.map((text, i) => ({
        type: 'log_line',
        deployment_id: i % 2 ? null : `dep_${i}`,
        attempt_id: i % 3 ? `att_${i}` : null,
        data: { stream: 'stdout', text },
      })),
      [
        {
          type: 'deployment_deleted',
          deployment_id: 'dep_x',
          attempt_id: null,
          data: { nested: { a: [1, null, '"'] } },
        },
      ],
      Array.from({ length: 250 }, (_, i) => ({
        type: 'log_line' as const,
        deployment_id: 'dep_big',
        attempt_id: 'att_big',
        data: { stream: 'stderr', text: `line ${i}` },
      })),
    ];
    const returned = [];
    for (const [b, events] of batches.entries()) {
      const offsets = events.map((_, i) => (i % 2 ? null : i * 10 + b));
      returned.push(
        ...(await store.db
          .transaction()
          .execute((trx) => insertEvents(trx, events, `2026-12-07T00:00:0${b}Z`, offsets))),
      );
    }
    const all = batches.flat();
    expect(returned.map((e) => e.seq)).toEqual(all.map((_, i) => head + 1 + i));
    expect(await selectLastSeq(store.db)).toBe(head + all.length);
    const stored = await selectEvents(store.db, { after: head, limit: 1000 });
    expect(stored).toEqual(returned);
    expect(stored.map((e) => [e.type, e.deployment_id, e.attempt_id, e.data])).toEqual(
      all.map((e) => [e.type, e.deployment_id, e.attempt_id, e.data]),
    );
    const offsets = await store.db
      .selectFrom('events')
      .select(['seq', 'log_offset'])
      .where('seq', '>', head)
      .orderBy('seq')
      .execute();
    const want = batches.flatMap((events, b) => events.map((_, i) => (i % 2 ? null : i * 10 + b)));
    expect(offsets.map((r) => (r.log_offset === null ? null : Number(r.log_offset)))).toEqual(want);
  });
});
