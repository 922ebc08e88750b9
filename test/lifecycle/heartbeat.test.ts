// Heartbeats are single-flight (issue 17.6): while the database holds the instance's renewal up for
// longer than the lease, no second renewal is sent, and the lapse that follows re-registers once
// (one new epoch), not once per heartbeat that piled up behind the first.
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { DIALECTS, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

const TTL_MS = 600;
const engines: Lifeline[] = [];
afterAll(async () => {
  for (const e of engines) await e.close();
});

async function epochOf(engine: Lifeline): Promise<number> {
  const row = await engine.store.db
    .selectFrom('instances')
    .select('epoch')
    .where('id', '=', engine.instanceId)
    .executeTakeFirstOrThrow();
  return Number(row.epoch);
}

/** Heartbeat writes (a renewal, or the re-registration after a lapse) waiting on the row right now. */
async function waitingHeartbeats(engine: Lifeline): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
    where datname = current_database() and wait_event_type = 'Lock'
      and (query ilike 'update "instances"%' or query ilike 'insert into "instances"%')`.execute(
    engine.store.db,
  );
  return rows[0].n;
}

describe.each(DIALECTS)('heartbeat on a slow database (%s)', (dialect) => {
  it('one renewal in flight at a time, and one re-registration after the lapse', async () => {
    const engine = await startEngine(tempDir(), { lease_ttl: `${TTL_MS}ms`, reap_interval: '60s' }, dialect);
    engines.push(engine);
    expect(await epochOf(engine)).toBe(1);
    let waiting = -1;
    // A slow database: the instance's row (Postgres) or the one connection (SQLite) is held for 2 TTLs:
    // past the lease, and some five heartbeat intervals (250 ms) for renewals to pile up in.
    await engine.store.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('instances')
        .set((eb) => ({ last_seen_at: eb.ref('last_seen_at') }))
        .where('id', '=', engine.instanceId)
        .execute();
      await new Promise((r) => setTimeout(r, 2 * TTL_MS));
      if (dialect === 'postgres') waiting = await waitingHeartbeats(engine);
    });
    if (dialect === 'postgres') expect(waiting).toBe(1);
    // The held-up renewal finds its lease lapsed and re-registers: once.
    await waitFor(async () => (await epochOf(engine)) > 1, 'the re-registration');
    // Renewals that piled up would re-register right behind it; this is some five more intervals.
    await new Promise((r) => setTimeout(r, 2 * TTL_MS));
    expect(await epochOf(engine)).toBe(2);
  }, 30_000);
});
