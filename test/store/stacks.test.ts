// Stacks on both stores (SPEC §12.2–12.3): creation writes the stack and every unit in one transaction
// or nothing; a unit's transition moves the stack's state in the same transaction; the stored state is
// the fold of the stack's state_transition events and the §12.3 function of its units at every step;
// every event of a unit carries stack_id; concurrent overlapping creates leave one winner, nothing partial.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldStack, stackStateOf } from '../../src/domain/stack-state.ts';
import type { DeploymentState, LifelineEvent } from '../../src/domain/types.ts';
import { LifelineError } from '../../src/domain/errors.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { ADMIN, DIALECTS, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

const spec = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  units: [
    { key: 'net', plan: 'ok' },
    { key: 'vm', plan: 'ok', count: 2, after: ['net'] },
    { key: 'fin', plan: 'ok', after: ['vm'] },
  ],
  ...extra,
});

async function refusal(p: Promise<unknown>): Promise<LifelineError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LifelineError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe.each(DIALECTS)('stacks on %s', (dialect) => {
  let engine: Lifeline;
  beforeAll(async () => {
    engine = await startEngine(tempDir(), {}, dialect);
  });
  afterAll(async () => {
    await engine.close();
  });

  const allEvents = async (): Promise<LifelineEvent[]> => {
    const out: LifelineEvent[] = [];
    let after = 0;
    for (;;) {
      const page = await engine.listEvents({ after, limit: 1000 });
      out.push(...page.items);
      if (page.items.length < 1000) return out;
      after = page.next_after;
    }
  };
  const counts = async () => {
    const db = engine.store.db;
    const n = async (t: 'stacks' | 'deployments' | 'events') =>
      Number((await db.selectFrom(t).select(db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    return { stacks: await n('stacks'), deployments: await n('deployments'), events: await n('events') };
  };

  /** Invariant 10: stored state = fold of the stack's events = §12.3 over its units. */
  const expectInvariant = async (name: string) => {
    const s = await engine.getStack(name);
    const events = (await engine.listEvents({ stack: name, limit: 1000 })).items;
    expect(foldStack(events).state).toBe(s.state);
    const run = s.active_run ? (s.active_run.kind as 'deploy' | 'teardown') : null;
    expect(
      stackStateOf(
        run,
        s.units.map((u) => u.state as DeploymentState),
      ),
    ).toBe(s.state);
    return s;
  };

  it('creates the stack and its units, named, labelled and in dependency order, in one commit', async () => {
    const s = await engine.createStack(spec('r1', { labels: { course: 'c1' } }), OPERATOR);
    expect(s).toMatchObject({ name: 'r1', state: 'pending', version: 1, active_run: null });
    expect(s.units.map((u) => [u.key, u.index, u.deployment, u.state, u.depth])).toEqual([
      ['net', null, 'r1-net', 'pending', 0],
      ['vm', 1, 'r1-vm-1', 'pending', 1],
      ['vm', 2, 'r1-vm-2', 'pending', 1],
      ['fin', null, 'r1-fin', 'pending', 2],
    ]);
    expect(s.units[0].outputs).toEqual({});
    const dep = await engine.getDeployment('r1-vm-2');
    expect(dep.labels).toEqual({
      course: 'c1',
      'lifeline.stack': 'r1',
      'lifeline.unit': 'vm',
      'lifeline.index': '2',
    });
    const events = (await engine.listEvents({ stack: 'r1', limit: 100 })).items;
    // 2 per unit (created, pending) and the stack's own, all in one commit (one `at`).
    expect(events).toHaveLength(9);
    expect(new Set(events.map((e) => e.at)).size).toBe(1);
    expect(events.every((e) => e.stack_id === s.id)).toBe(true);
    expect(events[events.length - 1].data).toMatchObject({
      entity: 'stack',
      from: null,
      to: 'pending',
      version: 1,
    });
    await expectInvariant('r1');
  });

  it('a taken name is a 409 naming it, and nothing is written', async () => {
    await engine.createDeployment({ name: 'r2-vm-2', plan: 'ok' }, OPERATOR);
    const before = await counts();
    const e = await refusal(engine.createStack(spec('r2'), OPERATOR));
    expect(e.code).toBe('DEPLOYMENT_EXISTS');
    expect(e.message).toContain('r2-vm-2');
    const again = await refusal(engine.createStack(spec('r1'), OPERATOR));
    expect(again.code).toBe('STACK_EXISTS');
    expect(await counts()).toEqual(before);
  });

  it('a malformed spec or an unknown plan or bad params is a 422 naming the field, nothing written', async () => {
    const before = await counts();
    const cases: [unknown, string][] = [
      [spec('r3', { units: [{ key: 'a', plan: 'nope' }] }), 'units[0].plan'],
      [
        spec('r3', { units: [{ key: 'a', plan: 'secret', params: { replicas: 0 } }] }),
        'units[0].params.replicas',
      ],
      [spec('r3', { units: [{ key: 'a', plan: 'ok', after: ['a'] }] }), 'units[0].after[0]'],
    ];
    for (const [input, field] of cases) {
      const e = await refusal(engine.createStack(input, OPERATOR));
      expect(e.code).toBe('VALIDATION');
      expect(e.errors?.map((x) => x.field)).toContain(field);
    }
    expect(await counts()).toEqual(before);
  });

  it('unit transitions move the stack state in their own commit; every unit event carries stack_id', async () => {
    const s = await engine.createStack(spec('r4'), OPERATOR);
    const seen: string[] = [s.state];
    const track = async () => {
      const now = await expectInvariant('r4');
      if (seen[seen.length - 1] !== now.state) seen.push(now.state);
    };
    for (const name of ['r4-net', 'r4-vm-1', 'r4-vm-2', 'r4-fin']) {
      const att = await engine.startDeploy(name, {}, OPERATOR);
      await track();
      await waitFor(async () => (await engine.getAttempt(att.id)).state === 'succeeded', `${name} deployed`);
      await waitFor(async () => (await engine.getDeployment(name)).state === 'ready', `${name} ready`);
      await track();
    }
    expect((await engine.getStack('r4')).state).toBe('ready');
    // Down one unit: partial; then teardown of all: torn_down.
    for (const name of ['r4-fin', 'r4-vm-2', 'r4-vm-1', 'r4-net']) {
      await engine.teardown(name, { confirm: name }, OPERATOR);
      await waitFor(
        async () => (await engine.getDeployment(name)).state === 'torn_down',
        `${name} torn down`,
      );
      await track();
    }
    // A unit deploying outside a run is neither ready nor pending: the §12.3 words make that `failed`.
    expect(seen).toEqual(['pending', 'failed', 'partial', 'ready', 'partial', 'torn_down']);
    const unitIds = new Set(s.units.map((u) => u.deployment_id));
    const unitEvents = (await allEvents()).filter((e) => e.deployment_id && unitIds.has(e.deployment_id));
    expect(unitEvents.length).toBeGreaterThan(20);
    expect(unitEvents.filter((e) => e.stack_id !== s.id)).toEqual([]);
    expect(new Set(unitEvents.map((e) => e.type))).toEqual(
      new Set([
        'deployment_created',
        'state_transition',
        'attempt_start',
        'attempt_end',
        'log_line',
        'check_result',
      ]),
    );
    // A stack's transition shares the commit (the `at`) of the unit transition that caused it.
    const stackEvents = (await engine.listEvents({ stack: 'r4', types: ['state_transition'], limit: 1000 }))
      .items;
    for (const e of stackEvents.filter(
      (x) => x.data.entity === 'stack' && x.data.trigger === 'unit_changed',
    )) {
      const cause = stackEvents.find(
        (x) => x.data.entity === 'deployment' && x.data.id === e.data.reason && x.at === e.at,
      );
      expect(cause, JSON.stringify(e)).toBeDefined();
      expect(cause!.seq).toBeLessThan(e.seq);
    }
    // Standalone deployments' events carry none.
    await engine.createDeployment({ name: 'alone', plan: 'ok' }, OPERATOR);
    const alone = (await engine.listEvents({ deployment: 'alone', limit: 10 })).items;
    expect(alone.length).toBeGreaterThan(0);
    expect(alone.every((e) => !('stack_id' in e))).toBe(true);
  }, 60_000);

  it('update: new units pending, removed ones deleted only when pending/torn_down, If-Match', async () => {
    const s = await engine.createStack(spec('r5'), OPERATOR);
    await engine.startDeploy('r5-net', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('r5-net')).state === 'ready', 'r5-net ready');
    const v = (await engine.getStack('r5')).version;
    const stale = await refusal(engine.updateStack('r5', spec('r5'), OPERATOR, { ifVersion: v - 1 }));
    expect(stale.code).toBe('VERSION_MISMATCH');
    const dropNet = { name: 'r5', units: [{ key: 'vm', plan: 'ok', count: 3 }] };
    const standing = await refusal(engine.updateStack('r5', dropNet, OPERATOR, { ifVersion: v }));
    expect(standing.code).toBe('UNIT_NOT_TORN_DOWN');
    expect(standing.message).toContain('r5-net (ready)');
    const renamed = await refusal(engine.updateStack('r5', { ...dropNet, name: 'r6' }, OPERATOR));
    expect(renamed.errors?.[0].field).toBe('name');
    const keep = {
      name: 'r5',
      units: [
        { key: 'net', plan: 'ok' },
        { key: 'vm', plan: 'ok', count: 3, params: { x: 1 } },
      ],
    };
    const u = await engine.updateStack('r5', keep, OPERATOR, { ifVersion: v });
    expect(u.version).toBeGreaterThan(v);
    expect(u.units.map((x) => x.deployment)).toEqual(['r5-net', 'r5-vm-1', 'r5-vm-2', 'r5-vm-3']);
    expect(u.units.map((x) => x.state)).toEqual(['ready', 'pending', 'pending', 'pending']);
    expect(u.state).toBe('partial');
    expect((await engine.getDeployment('r5-vm-1')).params).toEqual({ x: 1 });
    await refusal(engine.getDeployment('r5-fin')); // removed (it was pending)
    await expectInvariant('r5');
    expect(s.id).toBe(u.id);
  });

  it('delete: every unit pending/torn_down unless force; a unit is never deleted on its own', async () => {
    await engine.createStack(spec('r7'), OPERATOR);
    await engine.startDeploy('r7-net', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('r7-net')).state === 'ready', 'r7-net ready');
    const unit = await refusal(engine.deleteDeployment('r7-vm-1', {}, ADMIN));
    expect(unit.code).toBe('INVALID_TRANSITION');
    const standing = await refusal(engine.deleteStack('r7', {}, ADMIN));
    expect(standing.code).toBe('UNIT_NOT_TORN_DOWN');
    await engine.deleteStack('r7', { force: true }, ADMIN);
    expect((await refusal(engine.getStack('r7'))).code).toBe('NOT_FOUND');
    expect((await refusal(engine.getDeployment('r7-net'))).code).toBe('NOT_FOUND');
    // The name is free again; the old stack's events stay readable by its id.
    await engine.createStack(spec('r7'), OPERATOR);
  });

  it('while a run is active, direct unit writes are 409 STACK_RUN_IN_PROGRESS and the stack follows its kind', async () => {
    const s = await engine.createStack(spec('r8'), OPERATOR);
    const db = engine.store.db;
    const at = new Date().toISOString();
    await db
      .insertInto('runs')
      .values({
        id: 'run_test',
        stack_id: s.id,
        kind: 'deploy',
        state: 'running',
        version: 1,
        steps: '[]',
        options: '{}',
        actor: 'test',
        reason: null,
        created_at: at,
        updated_at: at,
        ended_at: null,
      })
      .execute();
    await db.updateTable('stacks').set({ active_run_id: 'run_test' }).where('id', '=', s.id).execute();
    for (const write of [
      () => engine.startDeploy('r8-net', {}, OPERATOR),
      () => engine.teardown('r8-net', { confirm: 'r8-net' }, OPERATOR),
      () => engine.resolve('r8-net', { state: 'ready', reason: 'x' }, ADMIN),
      () => engine.deleteDeployment('r8-net', {}, ADMIN),
      () => engine.updateStack('r8', spec('r8'), OPERATOR),
      () => engine.deleteStack('r8', { force: true }, ADMIN),
    ]) {
      expect((await refusal(write())).code).toBe('STACK_RUN_IN_PROGRESS');
    }
    expect((await engine.getStack('r8')).active_run).toEqual({
      id: 'run_test',
      kind: 'deploy',
      state: 'running',
    });
  });
});

describe('concurrent creation on postgres', () => {
  let engine: Lifeline;
  beforeAll(async () => {
    engine = await startEngine(tempDir(), {}, 'postgres');
  });
  afterAll(async () => {
    await engine.close();
  });

  it('overlapping names: one create wins, the others are refused, nothing partial', async () => {
    for (let round = 0; round < 3; round++) {
      // Each stack's units overlap the next one's: c<r>-x-a-… are shared names across the specs.
      const specs = Array.from({ length: 6 }, (_, i) => ({
        name: `c${round}-x`,
        units: [
          { key: 'a', plan: 'ok', count: 2 + (i % 3) },
          { key: `own${i}`, plan: 'ok' },
        ],
      }));
      const results = await Promise.allSettled(specs.map((s) => engine.createStack(s, OPERATOR)));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      for (const r of results) {
        if (r.status === 'rejected')
          expect(['STACK_EXISTS', 'DEPLOYMENT_EXISTS']).toContain((r.reason as LifelineError).code);
      }
      const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<Lifeline['createStack']>>>).value;
      const live = await engine.store.db
        .selectFrom('deployments')
        .select(['name', 'stack_id'])
        .where('name', 'like', `c${round}-x-%`)
        .where('deleted_at', 'is', null)
        .execute();
      expect(live.every((d) => d.stack_id === winner.id)).toBe(true);
      expect(live.map((d) => d.name).sort()).toEqual(winner.units.map((u) => u.deployment).sort());
      const stacks = await engine.store.db
        .selectFrom('stacks')
        .select('id')
        .where('name', '=', `c${round}-x`)
        .execute();
      expect(stacks).toHaveLength(1);
    }
  });

  it('overlapping unit names across different stack names: one wins per name, nothing partial', async () => {
    // y1-a-1 … (key "a" of stack y1) collides with stack "y1-a"'s unit "1"? Names overlap via keys.
    const specs = [
      { name: 'y1', units: [{ key: 'a-b', plan: 'ok' }] },
      { name: 'y1-a', units: [{ key: 'b', plan: 'ok' }] },
    ];
    const results = await Promise.allSettled(specs.map((s) => engine.createStack(s, OPERATOR)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((rejected.reason as LifelineError).code).toBe('DEPLOYMENT_EXISTS');
    expect((rejected.reason as LifelineError).message).toContain('y1-a-b');
    const live = await engine.store.db
      .selectFrom('deployments')
      .select('name')
      .where('name', '=', 'y1-a-b')
      .execute();
    expect(live).toHaveLength(1);
    const stacks = await engine.store.db
      .selectFrom('stacks')
      .select('name')
      .where('name', 'in', ['y1', 'y1-a'])
      .execute();
    expect(stacks).toHaveLength(1);
  });
});
