// Leases on the database's clock (SPEC §5, docs/scaling.md): two real servers on one Postgres whose own
// clocks are a minute fast and a minute slow. Neither declares the other dead, neither is declared dead,
// and each keeps its own attempt, through many lease lifetimes and reap passes.
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbUrlFor, tempDir, waitFor } from '../helpers/engine.ts';
import { call, killAllServers, serve } from '../helpers/servers.ts';

afterAll(killAllServers);

const LEASE_MS = 1_500;
const SHORT = { lease_ttl: `${LEASE_MS}ms`, reap_interval: '300ms', start_deadline: '2s' };

describe('clock skew between instances (postgres)', () => {
  it('an instance whose clock is a minute off neither declares its peers dead nor is declared dead', async () => {
    const dir = tempDir('lifeline-skew-');
    const db = await dbUrlFor('postgres', dir);
    const fast = await serve({
      db,
      dataDir: path.join(dir, 'fast'),
      extra: SHORT,
      env: { LIFELINE_CLOCK_OFFSET_MS: '60000' },
    });
    const slow = await serve({
      db,
      dataDir: path.join(dir, 'slow'),
      extra: SHORT,
      env: { LIFELINE_CLOCK_OFFSET_MS: '-60000' },
    });
    const ids: Record<string, string> = {};
    for (const [name, s] of [
      ['on-fast', fast],
      ['on-slow', slow],
    ] as const) {
      expect((await call(s.url, 'POST', '/v1/deployments', { name, plan: 'sleep' })).status).toBe(201);
      const dep = await call(s.url, 'POST', `/v1/deployments/${name}/attempts`, {});
      expect(dep.status).toBe(202);
      ids[name] = dep.body.id;
    }
    const attempt = async (id: string) => (await call(fast.url, 'GET', `/v1/attempts/${id}`)).body;
    for (const id of Object.values(ids)) {
      await waitFor(async () => (await attempt(id)).state === 'running', `${id} running`);
    }
    const owners = {
      fast: (await attempt(ids['on-fast'])).owner,
      slow: (await attempt(ids['on-slow'])).owner,
    };
    expect(owners.fast).not.toBe(owners.slow);

    // Several lease lifetimes and reap passes: with leases on the instances' clocks, the fast one would
    // see the slow one's heartbeats a minute old at its first reap and take over (or give up) its attempt.
    await new Promise((r) => setTimeout(r, 3 * LEASE_MS));
    for (const [name, owner] of [
      ['on-fast', owners.fast],
      ['on-slow', owners.slow],
    ] as const) {
      const a = await attempt(ids[name]);
      expect(a).toMatchObject({ state: 'running', owner, recovered: false });
    }
    for (const s of [fast, slow]) {
      const res = await call(s.url, 'GET', '/v1/instances');
      const list = (Array.isArray(res.body) ? res.body : res.body.items) as { id: string; alive: boolean }[];
      const alive = new Set(list.filter((i) => i.alive).map((i) => i.id));
      expect(alive.has(owners.fast) && alive.has(owners.slow)).toBe(true);
    }
    expect(fast.output() + slow.output()).not.toMatch(/lease lapsed/);

    // Each still supervises its own: a cancel through the other instance is carried out by the owner.
    expect((await call(slow.url, 'POST', '/v1/deployments/on-fast/cancel')).status).toBe(202);
    expect((await call(fast.url, 'POST', '/v1/deployments/on-slow/cancel')).status).toBe(202);
    for (const id of Object.values(ids)) {
      await waitFor(async () => (await attempt(id)).state === 'cancelled', `${id} cancelled`);
    }
    await Promise.all([fast.stop(), slow.stop()]);
  }, 420_000);
});
