// Invariant 12 across instances (SPEC §13.1, §13.4): three engines on one Postgres database accept
// attempts on one key of limit 2 at once; midway one instance stops dead and its lease lapses, so the
// others take over its attempts and its queue. Folding every event in seq order, no key ever has more
// than its limit of holders; every attempt ends, none waits forever, none is launched twice.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { snapshotOf, expectStoreInvariants, expectAttemptHistories } from '../helpers/invariants.ts';
import { foldSlots } from '../helpers/gates.ts';
import {
  ADMIN,
  dbUrlFor,
  FIXTURES,
  fixturePlans,
  OPERATOR,
  quietLogger,
  tempDir,
  testConfig,
  waitFor,
} from '../helpers/engine.ts';

const open: Lifeline[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close().catch(() => undefined);
});

const plans = {
  ...fixturePlans(),
  vm: {
    deploy: [path.join(FIXTURES, 'sleep.sh')],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    env: { SLEEP_SECONDS: '0.2' },
    concurrency: { key: 'hypervisor', limit: 2 },
  },
};

async function engine(db: string): Promise<Lifeline> {
  const config = testConfig(tempDir(), { plans, lease_ttl: '2s', reap_interval: '300ms' }, db);
  const e = await openLifeline({ config, logger: quietLogger() });
  await e.start();
  open.push(e);
  return e;
}

const LAPSED = '2000-01-01T00:00:00.000Z';
const N = 30;

describe('concurrency limits across instances (postgres)', () => {
  it('never more than the limit hold a slot, through an instance lost midway', async () => {
    const db = await dbUrlFor('postgres', tempDir());
    const engines = [await engine(db), await engine(db), await engine(db)];
    const [a, , c] = engines;
    for (let i = 0; i < N; i++) await a.createDeployment({ name: `vm-${i}`, plan: 'vm' }, OPERATOR);

    // Everyone at once, spread over the three instances.
    const first = await Promise.all(
      Array.from({ length: N / 2 }, (_, i) => engines[i % 3].startDeploy(`vm-${i}`, {}, OPERATOR)),
    );
    expect(first.filter((x) => x.waiting.length === 0).length).toBeLessThanOrEqual(2);
    // c stops dead (no more heartbeats, timers or writes) and its lease lapses: the others take over.
    await waitFor(async () => (await a.listWaitingAttempts({})).items.length < N / 2 - 2, 'some to pass');
    await c.close();
    open.splice(open.indexOf(c), 1);
    await a.store.db
      .updateTable('instances')
      .set({ last_seen_at: LAPSED })
      .where('id', '=', c.instanceId)
      .execute();
    const live = engines.filter((e) => e !== c);
    const second = await Promise.all(
      Array.from({ length: N / 2 }, (_, i) => live[i % 2].startDeploy(`vm-${N / 2 + i}`, {}, OPERATOR)),
    );
    const ids = [...first, ...second].map((x) => x.id);

    // Every attempt ends; a start the lost instance left half-done becomes unknown (SPEC §5) and keeps
    // its slot until an operator resolves it, as an operator would.
    await waitFor(
      async () => {
        let open = 0;
        for (const id of ids) {
          const att = await a.getAttempt(id);
          if (att.state === 'unknown') {
            const dep = await a.getDeployment(att.deployment_id);
            if (dep.state === 'unknown')
              await a.resolve(dep.name, { state: 'failed', reason: 'test' }, ADMIN);
          } else if (att.state === 'queued' || att.state === 'running') open++;
        }
        return open === 0;
      },
      'every attempt to end',
      90_000,
    );

    const s = await snapshotOf(a.store.db);
    expectStoreInvariants(s);
    expectAttemptHistories(s);
    const held = foldSlots(s.events, () => 2);
    expect([...(held.get('hypervisor') ?? [])]).toEqual([]);
    expect(await a.store.db.selectFrom('gate_slots').selectAll().execute()).toEqual([]);
    expect(await a.store.db.selectFrom('attempt_gates').selectAll().execute()).toEqual([]);
    // Each attempt was granted its slot once and started at most once.
    const grants = s.events.filter((e) => e.type === 'gate_opened').map((e) => e.attempt_id);
    expect(new Set(grants).size).toBe(grants.length);
    const starts = s.events.filter((e) => e.type === 'attempt_start').map((e) => e.attempt_id);
    expect(new Set(starts).size).toBe(starts.length);
    const succeeded = s.attempts.filter((x) => x.state === 'succeeded').length;
    expect(succeeded).toBeGreaterThan(N / 2);
    // The instances did share the work: attempts were opened by more than one of them.
    const owners = new Set(s.attempts.filter((x) => x.started_at !== null).map((x) => x.owner));
    expect(owners.size).toBeGreaterThan(1);
  }, 180_000);
});
