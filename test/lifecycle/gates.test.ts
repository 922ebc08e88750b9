// Gates (SPEC §13): the waiting mechanism and concurrency limits (§13.1) with real processes, on SQLite
// and Postgres: a queue on one key opens first come first served as slots free, a waiting attempt is
// not launched and cancels like one that never started, reject writes nothing, a missing key param is a
// 422, queue_timeout cancels, an unknown holder keeps its slot until resolved, and a retry waits too.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tellCtl } from '../helpers/fifo.ts';
import type { Attempt, LifelineEvent } from '../../src/domain/types.ts';
import { LifelineError } from '../../src/domain/errors.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { freezeGate } from '../../src/lifecycle/freezes-gate.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';
import { foldSlots } from '../helpers/gates.ts';
import {
  ADMIN,
  DIALECTS,
  FIXTURES,
  fixturePlans,
  OPERATOR,
  startEngine,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const nodeParams = {
  type: 'object',
  properties: { node: { type: 'string' } },
};
const plans = {
  ...fixturePlans(),
  vm: {
    deploy: p('ctl.sh'),
    teardown: p('ctl.sh'),
    params: nodeParams,
    concurrency: { key: 'proxmox-${params.node}', limit: 1 },
  },
  vm2: {
    deploy: p('ctl.sh'),
    teardown: p('ctl.sh'),
    params: nodeParams,
    concurrency: { key: 'pair-${params.node}', limit: 2 },
  },
  strict: {
    deploy: p('ctl.sh'),
    teardown: p('ctl.sh'),
    params: nodeParams,
    concurrency: { key: 'strict-${params.node}', limit: 1, when_busy: 'reject' },
  },
  patient: {
    deploy: p('ctl.sh'),
    teardown: p('ctl.sh'),
    params: nodeParams,
    concurrency: { key: 'patient', limit: 1, queue_timeout: '400ms' },
  },
  flakyvm: {
    deploy: p('fail.sh'),
    teardown: p('ok.sh'),
    retry: { max: 1, backoff: '20ms' },
    concurrency: { key: 'flaky', limit: 1 },
  },
  holdvm: { deploy: p('ctl.sh'), teardown: p('ctl.sh'), concurrency: { key: 'flaky', limit: 1 } },
};

let engines: Lifeline[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

async function boot(dialect: (typeof DIALECTS)[number]): Promise<{ engine: Lifeline; dir: string }> {
  const dir = tempDir();
  const engine = await startEngine(dir, { plans }, dialect);
  engines.push(engine);
  return { engine, dir };
}

/** Tells a ctl.sh plan to exit with rc (through its control FIFO). */
async function tellExit(dir: string, depId: string, rc: number): Promise<void> {
  await tellCtl(dir, depId, rc);
}

const running = (engine: Lifeline, id: string) =>
  waitFor(async () => ((await engine.getAttempt(id)).state === 'running' ? true : null), `${id} running`);

async function ended(engine: Lifeline, id: string): Promise<Attempt> {
  return waitFor(async () => {
    const a = await engine.getAttempt(id);
    return a.state !== 'queued' && a.state !== 'running' ? a : null;
  }, `attempt ${id} to end`);
}

async function events(engine: Lifeline): Promise<LifelineEvent[]> {
  return (await engine.listEvents({ after: 0, limit: 1000 })).items;
}

async function deployOn(engine: Lifeline, name: string, plan: string, node?: string): Promise<Attempt> {
  await engine.createDeployment({ name, plan, params: node === undefined ? {} : { node } }, OPERATOR);
  return engine.startDeploy(name, {}, OPERATOR);
}

async function expectInvariants(engine: Lifeline, limits: Record<string, number>): Promise<void> {
  const s = await snapshotOf(engine.store.db);
  expectStoreInvariants(s);
  expectAttemptHistories(s);
  const held = foldSlots(s.events, (k) => limits[k] ?? 0);
  const stored = await engine.store.db.selectFrom('gate_slots').selectAll().execute();
  const folded = [...held].flatMap(([key, set]) => [...set].map((a) => `${key} ${a}`)).sort();
  expect(stored.map((r) => `${r.key} ${r.attempt_id}`).sort()).toEqual(folded);
}

describe.each(DIALECTS)('gates on %s', (dialect) => {
  it('queues on a busy key first come first served, opens as slots free, cancels a waiter as unstarted', async () => {
    const { engine, dir } = await boot(dialect);
    const a = await deployOn(engine, 'a', 'vm', 'x');
    expect(a.waiting).toEqual([]);
    await running(engine, a.id);
    const b = await deployOn(engine, 'b', 'vm', 'x');
    const c = await deployOn(engine, 'c', 'vm', 'x');
    // Another key is not held up by this one.
    const other = await deployOn(engine, 'other', 'vm', 'y');
    await running(engine, other.id);

    expect(b.state).toBe('queued');
    expect(b.waiting).toEqual([
      { gate: 'concurrency', detail: { key: 'proxmox-x', position: 1 }, since: expect.any(String) },
    ]);
    expect((await engine.getAttempt(c.id)).waiting[0].detail).toEqual({ key: 'proxmox-x', position: 2 });
    expect((await engine.getDeployment('b')).state).toBe('deploying');
    // Not launched: no run dir records, and it stays queued past the start deadline (2 s in tests).
    await new Promise((r) => setTimeout(r, 2_500));
    await engine.reconcileNow();
    expect((await engine.getAttempt(b.id)).state).toBe('queued');
    expect(readSupervisor(path.join(dir, 'attempts', b.id))).toBeNull();
    const listed = await engine.listWaitingAttempts({});
    expect(listed.items.map((x) => x.id)).toEqual([b.id, c.id]);

    await tellExit(dir, (await engine.getDeployment('a')).id, 0);
    expect((await ended(engine, a.id)).state).toBe('succeeded');
    await running(engine, b.id);
    const bNow = await engine.getAttempt(b.id);
    expect(bNow.waiting).toEqual([]);
    // c moved up as b left the queue.
    expect((await engine.getAttempt(c.id)).waiting[0].detail).toEqual({ key: 'proxmox-x', position: 1 });

    // Cancel of a waiting attempt: cancelled at once, the deployment back to what it was.
    const cancelled = await engine.cancel('c', OPERATOR);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.reason).toBe('cancelled');
    expect((await engine.getDeployment('c')).state).toBe('pending');

    await tellExit(dir, (await engine.getDeployment('b')).id, 0);
    expect((await ended(engine, b.id)).state).toBe('succeeded');
    await tellExit(dir, (await engine.getDeployment('other')).id, 0);
    await ended(engine, other.id);

    const ev = await events(engine);
    const gateEvents = ev
      .filter((e) => e.type === 'gate_waiting' || e.type === 'gate_opened')
      .map((e) => [e.type, e.attempt_id, (e.data.detail as { key: string }).key]);
    expect(gateEvents).toEqual([
      ['gate_opened', a.id, 'proxmox-x'],
      ['gate_waiting', b.id, 'proxmox-x'],
      ['gate_waiting', c.id, 'proxmox-x'],
      ['gate_opened', other.id, 'proxmox-y'],
      ['gate_opened', b.id, 'proxmox-x'],
    ]);
    // b opened after a's end, and started after it opened.
    const seqOf = (type: string, id: string) => ev.find((e) => e.type === type && e.attempt_id === id)!.seq;
    expect(seqOf('attempt_end', a.id)).toBeLessThan(ev.filter((e) => e.type === 'gate_opened')[2].seq);
    expect(seqOf('gate_opened', b.id)).toBeLessThan(seqOf('attempt_start', b.id));
    await expectInvariants(engine, { 'proxmox-x': 1, 'proxmox-y': 1 });
  });

  it('a limit above 1 lets that many run at once', async () => {
    const { engine, dir } = await boot(dialect);
    const atts = [];
    for (const n of ['p1', 'p2', 'p3']) atts.push(await deployOn(engine, n, 'vm2', 'z'));
    await running(engine, atts[0].id);
    await running(engine, atts[1].id);
    expect((await engine.getAttempt(atts[2].id)).waiting[0].detail).toEqual({ key: 'pair-z', position: 1 });
    await tellExit(dir, (await engine.getDeployment('p2')).id, 1);
    expect((await ended(engine, atts[1].id)).state).toBe('failed');
    await running(engine, atts[2].id);
    for (const n of ['p1', 'p3']) await tellExit(dir, (await engine.getDeployment(n)).id, 0);
    for (const a of [atts[0], atts[2]]) await ended(engine, a.id);
    await expectInvariants(engine, { 'pair-z': 2 });
  });

  it('reject answers 409 CONCURRENCY_LIMIT naming the key and holders, and writes nothing', async () => {
    const { engine, dir } = await boot(dialect);
    const a = await deployOn(engine, 'a', 'strict', 'n');
    const created = await engine.createDeployment(
      { name: 'b', plan: 'strict', params: { node: 'n' } },
      OPERATOR,
    );
    // b's events only: a's own start and output may land meanwhile.
    const ofB = async () => (await events(engine)).filter((e) => e.deployment_id === created.id);
    const before = await ofB();
    const err = await engine.startDeploy('b', {}, OPERATOR).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LifelineError);
    expect((err as LifelineError).code).toBe('CONCURRENCY_LIMIT');
    expect((err as LifelineError).status).toBe(409);
    expect((err as LifelineError).message).toContain('strict-n');
    expect((err as LifelineError).message).toContain(a.id);
    expect(await ofB()).toEqual(before);
    const b = await engine.getDeployment('b');
    expect([b.state, b.version, b.current_attempt]).toEqual(['pending', 1, null]);
    await tellExit(dir, (await engine.getDeployment('a')).id, 0);
    await ended(engine, a.id);
    // Free again: b is accepted and runs.
    const b2 = await engine.startDeploy('b', {}, OPERATOR);
    await running(engine, b2.id);
    await tellExit(dir, b.id, 0);
    await ended(engine, b2.id);
    await expectInvariants(engine, { 'strict-n': 1 });
  });

  it('a param the key needs is a 422 at accept, nothing written', async () => {
    const { engine } = await boot(dialect);
    await engine.createDeployment({ name: 'nokey', plan: 'vm' }, OPERATOR);
    const before = await events(engine);
    const err = (await engine.startDeploy('nokey', {}, OPERATOR).catch((e: unknown) => e)) as LifelineError;
    expect(err.code).toBe('VALIDATION');
    expect(err.status).toBe(422);
    expect(err.errors).toEqual([
      { field: 'params.node', reason: expect.stringContaining('concurrency key') },
    ]);
    expect(await events(engine)).toEqual(before);
    expect((await engine.getDeployment('nokey')).state).toBe('pending');
    const rows = await engine.store.db.selectFrom('attempts').selectAll().execute();
    expect(rows).toEqual([]);
  });

  it('queue_timeout cancels a waiting attempt with reason queue_timeout', async () => {
    const { engine, dir } = await boot(dialect);
    const a = await deployOn(engine, 'a', 'patient');
    await running(engine, a.id);
    await engine.createDeployment({ name: 'b', plan: 'patient' }, OPERATOR);
    await engine.startDeploy('b', {}, OPERATOR); // b: deploying from pending
    const b = (await engine.getDeployment('b')).current_attempt!;
    const end = await ended(engine, b.id);
    expect([end.state, end.reason]).toEqual(['cancelled', 'queue_timeout']);
    expect((await engine.getDeployment('b')).state).toBe('pending');
    const trail = (await engine.listTransitions('b')).items.at(-1)!;
    expect([trail.trigger, trail.reason, trail.actor]).toEqual([
      'cancelled_before_start',
      'queue_timeout',
      'gates',
    ]);
    await tellExit(dir, (await engine.getDeployment('a')).id, 0);
    await ended(engine, a.id);
    await expectInvariants(engine, { patient: 1 });
  });

  it.each(['resolve', 'delete'])(
    'an unknown holder keeps its slot until an operator acts (%s)',
    async (how) => {
      const { engine, dir } = await boot(dialect);
      const a = await deployOn(engine, 'a', 'vm', 'u');
      await running(engine, a.id);
      const b = await deployOn(engine, 'b', 'vm', 'u');
      // a's supervisor and plan die without an exit record: its outcome is lost.
      const runDir = path.join(dir, 'attempts', a.id);
      for (const id of [readSupervisor(runDir), readProcess(runDir)]) {
        try {
          if (id) process.kill(-id.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await waitFor(async () => {
        await engine.reconcileNow();
        return (await engine.getAttempt(a.id)).state === 'unknown';
      }, 'a unknown');
      await engine.gates.pass();
      expect((await engine.getAttempt(b.id)).waiting).toHaveLength(1);
      if (how === 'resolve') await engine.resolve('a', { state: 'failed', reason: 'checked by hand' }, ADMIN);
      else await engine.deleteDeployment('a', { force: true }, ADMIN);
      await running(engine, b.id);
      await tellExit(dir, (await engine.getDeployment('b')).id, 0);
      await ended(engine, b.id);
      await expectInvariants(engine, { 'proxmox-u': 1 });
    },
  );

  it('a freeze made while an attempt waits on a slot holds it at the hand-over, even one an earlier freeze let go', async () => {
    const { engine, dir } = await boot(dialect);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const freeze = (name: string) => engine.createFreeze({ name, until, reason: 'exam' }, ADMIN);
    await freeze('first');
    const a = await deployOn(engine, 'a', 'vm', 'f');
    const b = await deployOn(engine, 'b', 'vm', 'f');
    expect(b.waiting.map((w) => w.gate)).toEqual(['freeze']);
    // Lifted: a gets the slot and runs, b passes the freeze and waits on the slot.
    await engine.deleteFreeze('first', ADMIN);
    await running(engine, a.id);
    await waitFor(async () => {
      const w = (await engine.getAttempt(b.id)).waiting;
      return w.length === 1 && w[0].gate === 'concurrency' ? true : null;
    }, 'b waiting on the slot');
    // A second freeze, then the slot frees: b has not passed its gates, so the freeze holds it again.
    await freeze('second');
    await tellExit(dir, (await engine.getDeployment('a')).id, 0);
    await ended(engine, a.id);
    const held = await waitFor(async () => {
      const w = (await engine.getAttempt(b.id)).waiting;
      return w.some((x) => x.gate === 'freeze') ? w : null;
    }, 'b held by the second freeze');
    expect(held.find((w) => w.gate === 'freeze')!.detail).toMatchObject({ freeze: 'second' });
    await engine.reconcileNow();
    expect((await engine.getAttempt(b.id)).state).toBe('queued');
    expect(readSupervisor(path.join(dir, 'attempts', b.id))).toBeNull();
    // Lifting it opens b: it takes the free slot and runs.
    await engine.deleteFreeze('second', ADMIN);
    await running(engine, b.id);
    await tellExit(dir, (await engine.getDeployment('b')).id, 0);
    await ended(engine, b.id);
    const ev = (await events(engine)).filter(
      (e) => e.attempt_id === b.id && (e.type === 'gate_waiting' || e.type === 'gate_opened'),
    );
    expect(ev.map((e) => `${e.type} ${String(e.data.gate)}`)).toEqual([
      'gate_waiting freeze',
      'gate_opened freeze',
      'gate_waiting concurrency',
      'gate_waiting freeze',
      'gate_opened freeze',
      'gate_opened concurrency',
    ]);
    await expectInvariants(engine, { 'proxmox-f': 1 });
  });

  it('a scheduled retry goes through the gate like any attempt', async () => {
    const { engine, dir } = await boot(dialect);
    const hold = await deployOn(engine, 'hold', 'holdvm');
    await running(engine, hold.id);
    // flaky waits behind hold; once it runs it fails, and its retry is granted the slot like any attempt.
    const first = await deployOn(engine, 'flaky', 'flakyvm');
    expect(first.waiting).toHaveLength(1);
    await tellExit(dir, (await engine.getDeployment('hold')).id, 0);
    expect((await ended(engine, first.id)).state).toBe('failed');
    const retry = await waitFor(async () => {
      const cur = (await engine.getDeployment('flaky')).current_attempt;
      return cur && cur.id !== first.id ? cur : null;
    }, 'the retry');
    expect((await engine.getAttempt(retry.id)).requested_by).toBe('retry');
    await ended(engine, retry.id);
    const ev = await events(engine);
    const grants = ev.filter((e) => e.type === 'gate_opened').map((e) => e.attempt_id);
    expect(grants).toEqual([hold.id, first.id, retry.id]);
    await expectInvariants(engine, { flaky: 1 });
  });
});

// Postgres only: the race needs a second connection committing while the first transaction is open
// (SQLite runs one write transaction at a time).
describe('gates on postgres', () => {
  it('a freeze lifted while an attempt is being held by it does not leave it held', async () => {
    const dir = tempDir();
    // No safety pass during the test: only the wake-ups under test may open it.
    const engine = await startEngine(dir, { plans, reap_interval: '10m' }, 'postgres');
    engines.push(engine);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    await engine.createFreeze({ name: 'race', until, reason: 'exam' }, ADMIN);
    // The gate reads the freeze in force; before its transaction commits the wait, the freeze is
    // lifted on another connection and the lift's look (finding no wait yet) is done.
    const check = freezeGate.check;
    let lifted = false;
    freezeGate.check = async (input) => {
      const v = await check(input);
      if (!lifted && v?.verdict.kind === 'wait') {
        lifted = true;
        await engine.deleteFreeze('race', ADMIN);
        await engine.freezeWatch.pass();
      }
      return v;
    };
    let a: Attempt;
    try {
      a = await deployOn(engine, 'a', 'vm', 'r');
    } finally {
      freezeGate.check = check;
    }
    expect(lifted).toBe(true);
    expect(a.waiting.map((w) => w.gate)).toEqual(['freeze']);
    // Its own commit looks again: the freeze is gone, so it opens and runs.
    await running(engine, a.id);
    await tellExit(dir, (await engine.getDeployment('a')).id, 0);
    await ended(engine, a.id);
    await expectInvariants(engine, { 'proxmox-r': 1 });
  });
});
