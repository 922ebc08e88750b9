// Issue 17.18: "store available again" only once the store has answered. A background step that
// returned early without a query (reconcile skips while the lease has lapsed, as it does in an outage)
// is no evidence, and must not end the outage in the log.
import { sql } from 'kysely';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { OutageLog } from '../../src/lifecycle/outage.ts';
import { openStore, type Store } from '../../src/store/open.ts';
import { dbUrlFor, DIALECTS } from '../helpers/dialect.ts';
import { tempDir } from '../helpers/config.ts';

const stores: Store[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

function logged() {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l).msg) });
  return { lines, log };
}

const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });

describe.each(DIALECTS)('outage log (%s)', (dialect) => {
  it('a step that touched no store does not end an outage; a completed query does', async () => {
    const { lines, log } = logged();
    const outage = new OutageLog(log);
    const store = await openStore(await dbUrlFor(dialect, tempDir()));
    stores.push(store);
    const db = store.db.withPlugin(outage.plugin());
    await sql`select 1`.execute(db); // answered before the outage: no evidence after it
    outage.failed('heartbeat', down);
    outage.ok(); // reconcile returned early: the lease lapsed
    expect(lines).toEqual(['store unavailable; background work will retry']);
    expect(outage.down).toBe(true);
    await sql`select 1`.execute(db);
    outage.ok();
    expect(lines).toEqual(['store unavailable; background work will retry', 'store available again']);
    expect(outage.down).toBe(false);
  });
});
