// Leases and fencing between two engines on one Postgres database (docs/scaling.md): a peer takes over
// the attempt of an instance whose lease lapsed, the stale owner's writes are refused by the fence, and
// an instance that finds its own lease lapsed re-registers under a new epoch and re-claims its attempts.
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { claimAttempt, selectAttemptById } from '../../src/store/attempts.ts';
import { applyTransition, LostRace } from '../../src/store/transition.ts';
import { dbUrlFor, OPERATOR, quietLogger, tempDir, testConfig, waitFor } from '../helpers/engine.ts';

const open: Lifeline[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

async function engine(dataDir: string, db: string, extra: Record<string, unknown>): Promise<Lifeline> {
  const e = await openLifeline({ config: testConfig(dataDir, extra, db), logger: quietLogger() });
  await e.start();
  open.push(e);
  return e;
}

const LAPSED = '2000-01-01T00:00:00.000Z';

describe('leases and fencing (postgres)', () => {
  it('a peer takes over a lapsed owner’s attempt; the stale owner’s writes are fenced off', async () => {
    const db = await dbUrlFor('postgres', tempDir());
    // Long leases: the owner still believes its lease held when the database says it lapsed.
    const slow = { lease_ttl: '60s', reap_interval: '60s' };
    const a = await engine(tempDir(), db, slow);
    const b = await engine(tempDir(), db, slow);
    await a.createDeployment({ name: 'web', plan: 'sleep' }, OPERATOR);
    const att = await a.startDeploy('web', {}, OPERATOR);
    await waitFor(async () => (await a.getAttempt(att.id)).state === 'running', 'running');
    const before = (await selectAttemptById(a.store.db, att.id))!;
    expect(before.owner).toBe(a.instanceId);

    await a.store.db
      .updateTable('instances')
      .set({ last_seen_at: LAPSED })
      .where('id', '=', a.instanceId)
      .execute();
    await b.reconcileNow();
    const taken = (await selectAttemptById(b.store.db, att.id))!;
    expect(taken.owner).toBe(b.instanceId);
    expect(taken.owner_epoch).toBeGreaterThan(0);

    // The stale owner (its old epoch) can neither take it back nor write its end.
    const stale = { owner: a.instanceId, epoch: Number(before.owner_epoch) };
    expect(await claimAttempt(a.store.db, att.id, stale, stale)).toBe(false);
    await expect(
      a.store.db.transaction().execute((trx) =>
        applyTransition(trx, {
          at: new Date().toISOString(),
          actor: 'runner',
          deployment: { id: taken.deployment_id },
          attempt: {
            id: att.id,
            change: { from: 'running', to: 'succeeded', trigger: 'exited', reason: null },
            fence: stale,
          },
        }),
      ),
    ).rejects.toBeInstanceOf(LostRace);

    // The new owner supervises it: a cancel through the old owner is carried out, once, truthfully.
    await a.cancel('web', OPERATOR);
    await waitFor(async () => (await b.getAttempt(att.id)).state === 'cancelled', 'cancelled', 30_000);
    const { items } = await b.listEvents({ deployment: taken.deployment_id, types: ['attempt_end'] });
    expect(items).toHaveLength(1);
    expect(await b.getAttempt(att.id)).toMatchObject({ state: 'cancelled', recovered: true });
  });

  it('an instance that finds its own lease lapsed re-registers under a new epoch and re-claims its attempt', async () => {
    const db = await dbUrlFor('postgres', tempDir());
    const a = await engine(tempDir(), db, { lease_ttl: '1500ms', reap_interval: '60s' });
    await a.createDeployment({ name: 'api', plan: 'sleep' }, OPERATOR);
    const att = await a.startDeploy('api', {}, OPERATOR);
    await waitFor(async () => (await a.getAttempt(att.id)).state === 'running', 'running');
    const epoch = async () =>
      Number(
        (
          await a.store.db
            .selectFrom('instances')
            .select('epoch')
            .where('id', '=', a.instanceId)
            .executeTakeFirst()
        )?.epoch,
      );
    const first = await epoch();
    await a.store.db
      .updateTable('instances')
      .set({ last_seen_at: LAPSED })
      .where('id', '=', a.instanceId)
      .execute();
    await waitFor(async () => (await epoch()) > first, 're-registration', 20_000);
    await waitFor(
      async () => Number((await selectAttemptById(a.store.db, att.id))!.owner_epoch) === (await epoch()),
      're-claim under the new epoch',
      20_000,
    );
    await a.cancel('api', OPERATOR);
    await waitFor(async () => (await a.getAttempt(att.id)).state === 'cancelled', 'cancelled', 30_000);
  });
});
