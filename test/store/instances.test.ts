// Instances and leases on the database's clock, on both stores: the clock's text format, registration
// epochs, and a heartbeat that cannot revive a lapsed lease.
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/open.ts';
import { registerInstance, renewLease, selectDbNow, selectInstances } from '../../src/store/instances.ts';
import { dbUrlFor, DIALECTS, tempDir } from '../helpers/engine.ts';

const open: Store[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

const info = {
  id: 'ins_01TEST',
  host: 'h',
  port: null,
  role: 'server',
  data_dir: '/d',
  pid: 1,
  started_at: '2026-01-01T00:00:00.000Z',
};

describe.each(DIALECTS)('leases (%s)', (dialect) => {
  it('heartbeats carry the database clock as ISO text; each registration takes a new epoch', async () => {
    const store = await openStore(await dbUrlFor(dialect, tempDir()));
    open.push(store);
    const now = await selectDbNow(store.db, dialect);
    expect(Math.abs(now - Date.now())).toBeLessThan(60_000); // same machine: the same clock, give or take
    expect(await registerInstance(store.db, dialect, info)).toBe(1);
    const [row] = await selectInstances(store.db);
    expect(row.last_seen_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(await registerInstance(store.db, dialect, info)).toBe(2);
    expect(await renewLease(store.db, dialect, info.id, 2, 60_000)).toBe(true);
    expect(await renewLease(store.db, dialect, info.id, 1, 60_000)).toBe(false); // a stale epoch
  });

  it('a lapsed lease is not renewed', async () => {
    const store = await openStore(await dbUrlFor(dialect, tempDir()));
    open.push(store);
    const epoch = await registerInstance(store.db, dialect, info);
    await store.db
      .updateTable('instances')
      .set({ last_seen_at: new Date(Date.now() - 120_000).toISOString() })
      .execute();
    expect(await renewLease(store.db, dialect, info.id, epoch, 60_000)).toBe(false);
    expect(await renewLease(store.db, dialect, info.id, epoch, 600_000)).toBe(true);
  });
});
