// A cancel request and a reached timeout are written through the one write path (issue 17 point 8):
// each sets its column with its event in one transaction, so streams and webhooks learn of it when it
// happens (not at the end), and the timeout, an owner's write, is fenced: a lapsed or replaced owner
// writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LifelineEvent } from '../../src/domain/types.ts';
import { markTimedOut } from '../../src/lifecycle/attempt-writes.ts';
import type { Ctx } from '../../src/lifecycle/context.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { selectAttemptById } from '../../src/store/attempts.ts';
import { DIALECTS, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';
import { expectAttemptHistories, snapshotOf } from '../helpers/invariants.ts';

describe.each(DIALECTS)('on %s', (dialect) => {
  let engine: Lifeline;
  let ctx: Ctx;
  beforeAll(async () => {
    engine = await startEngine(tempDir(), {}, dialect);
    ctx = (engine as unknown as { ctx: Ctx }).ctx;
  });
  afterAll(async () => {
    await engine.close();
  });

  const eventsOf = async (attemptId: string): Promise<LifelineEvent[]> =>
    (await engine.listEvents({ limit: 1000 })).items.filter((e) => e.attempt_id === attemptId);
  const ended = (id: string) =>
    waitFor(async () => {
      const a = await engine.getAttempt(id);
      return a.state !== 'queued' && a.state !== 'running' ? a : null;
    }, `${id} to end`);

  it('a cancel request is an event as soon as it is recorded', async () => {
    await engine.createDeployment({ name: 'c1', plan: 'stubborn' }, OPERATOR);
    const att = await engine.startDeploy('c1', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'running', 'running');
    const asked = await engine.cancel('c1', OPERATOR);
    expect(asked.state).toBe('running'); // it ignores SIGTERM: the end comes after the grace
    const marks = (await eventsOf(att.id)).filter((e) => e.type === 'cancel_requested');
    expect(marks).toHaveLength(1);
    expect(marks[0].data).toEqual({ actor: OPERATOR.name });
    expect(marks[0].at).toBe(asked.cancel_requested_at);
    expect((await engine.getAttempt(att.id)).state).toBe('running'); // seen before the end
    expect((await ended(att.id)).state).toBe('cancelled');
    const types = (await eventsOf(att.id)).map((e) => e.type);
    expect(types.indexOf('cancel_requested')).toBeLessThan(types.indexOf('attempt_end'));
  });

  it('a reached timeout is an event before the end', async () => {
    await engine.createDeployment({ name: 't1', plan: 'slowtimeout' }, OPERATOR);
    const att = await engine.startDeploy('t1', {}, OPERATOR);
    const a = await ended(att.id);
    expect(a).toMatchObject({ state: 'failed', reason: 'timeout' });
    const evs = await eventsOf(att.id);
    const reached = evs.filter((e) => e.type === 'timeout_reached');
    expect(reached).toHaveLength(1);
    expect(reached[0].data).toEqual({ timeout_ms: 500, actor: 'runner' });
    const row = (await selectAttemptById(engine.store.db, att.id))!;
    expect(reached[0].at).toBe(row.timed_out_at);
    expect(evs.findIndex((e) => e.type === 'timeout_reached')).toBeLessThan(
      evs.findIndex((e) => e.type === 'attempt_end'),
    );
    expectAttemptHistories(await snapshotOf(engine.store.db));
  });

  it("a lapsed or replaced owner's timeout write is refused", async () => {
    await engine.createDeployment({ name: 't2', plan: 'sleep' }, OPERATOR);
    const att = await engine.startDeploy('t2', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'running', 'running');
    const late = Date.now() + 3_600_000; // past any timeout
    // Lapsed: the lease is not held.
    const live = ctx.lease.live;
    ctx.lease.live = () => false;
    try {
      expect(await markTimedOut(ctx, att.id, late)).toBe(false);
    } finally {
      ctx.lease.live = live;
    }
    // Replaced: the lease is held, but the row names another epoch (taken over).
    const { epoch } = ctx.lease;
    await engine.store.db
      .updateTable('attempts')
      .set({ owner_epoch: epoch + 1 })
      .where('id', '=', att.id)
      .execute();
    expect(await markTimedOut(ctx, att.id, late)).toBe(false);
    const row = (await selectAttemptById(engine.store.db, att.id))!;
    expect(row.timed_out_at).toBeNull();
    expect((await eventsOf(att.id)).filter((e) => e.type === 'timeout_reached')).toEqual([]);
    // Its own again: the same write goes through, once.
    await engine.store.db
      .updateTable('attempts')
      .set({ owner_epoch: epoch })
      .where('id', '=', att.id)
      .execute();
    expect(await markTimedOut(ctx, att.id, late)).toBe(true);
    expect(await markTimedOut(ctx, att.id, late)).toBe(false);
    expect((await eventsOf(att.id)).filter((e) => e.type === 'timeout_reached')).toHaveLength(1);
    await engine.cancel('t2', OPERATOR);
    await ended(att.id);
  });
});
