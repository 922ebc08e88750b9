// Automatic retry of failed deploys (SPEC §9.1) with real processes, on SQLite and Postgres: a transient
// failure retried to `ready` with growing, jittered caps; a timeout retried too; the ends never retried;
// exhaustion; an operator action or a cancel during the wait; two instances on one Postgres database.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Attempt, LifelineEvent } from '../../src/domain/types.ts';
import { retryCapMs } from '../../src/domain/retry.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';
import {
  DIALECTS,
  FIXTURES,
  fixturePlans,
  OPERATOR,
  quietLogger,
  startEngine,
  tempDir,
  testConfig,
  waitFor,
  dbUrlFor,
} from '../helpers/engine.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
/** Far enough away that no retry of these starts during a test (full jitter over 20 days). */
const LATER = { max: 3, backoff: '20d' };
/** How much later than its cap a due time may land: the latency of one read of the database's clock. */
const DB_READ_SLACK_MS = 100;
const plans = {
  ...fixturePlans(),
  flaky: {
    deploy: p('flaky.sh'),
    teardown: p('ok.sh'),
    retry: { max: 3, backoff: '50ms', max_backoff: '1s' },
  },
  flakylater: { deploy: p('flaky.sh'), teardown: p('ok.sh'), retry: LATER },
  alwaysfails: { deploy: p('fail.sh'), teardown: p('ok.sh'), retry: { max: 2, backoff: '20ms' } },
  sleepy: {
    deploy: p('sleep.sh'),
    teardown: p('ok.sh'),
    env: { SLEEP_SECONDS: '30' },
    retry: { max: 3, backoff: '20ms' },
  },
  absent: {
    deploy: [path.join(FIXTURES, 'does-not-exist.sh')],
    teardown: p('ok.sh'),
    retry: { max: 3, backoff: '20ms' },
  },
  flakysecret: {
    deploy: p('flaky.sh'),
    teardown: p('ok.sh'),
    retry: { max: 3, backoff: '50ms' },
    params: {
      type: 'object',
      properties: { password: { type: 'string', writeOnly: true }, size: { type: 'string' } },
      additionalProperties: false,
    },
  },
  // Runs past its timeout: a timeout is retried like a non-zero exit.
  overrun: {
    deploy: p('sleep.sh'),
    teardown: p('ok.sh'),
    timeout: '500ms',
    cancel_grace: '500ms',
    env: { SLEEP_SECONDS: '30' },
    retry: LATER,
  },
  checked: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: p('check.sh'),
    retry: { max: 3, backoff: '20ms' },
  },
};

let engines: Lifeline[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

async function allEvents(engine: Lifeline, name: string): Promise<LifelineEvent[]> {
  return (await engine.listEvents({ after: 0, limit: 1000, deployment: name })).items;
}

const ofType = (events: LifelineEvent[], type: string) => events.filter((e) => e.type === type);

async function attempts(engine: Lifeline, name: string): Promise<Attempt[]> {
  return (await engine.listAttempts(name, { limit: 100 })).items.reverse();
}

async function ended(engine: Lifeline, id: string): Promise<Attempt> {
  return waitFor(async () => {
    const a = await engine.getAttempt(id);
    return a.state !== 'queued' && a.state !== 'running' ? a : null;
  }, `attempt ${id} to end`);
}

/**
 * SPEC §8 over the whole store once it is quiet, plus the retry rules: a schedule waits only on a failed
 * deployment, on its current attempt, a failed deploy that may be retried; each retry attempt consumed
 * the schedule of the attempt before it, with its number, so no schedule started twice.
 */
async function expectRetryInvariants(engine: Lifeline): Promise<void> {
  const s = await snapshotOf(engine.store.db);
  expectStoreInvariants(s);
  expectAttemptHistories(s);
  const scheduled = s.events.filter((e) => e.type === 'retry_scheduled');
  for (const d of s.deployments) {
    if (d.retry_attempt_id == null) continue;
    expect(d.state, `deployment ${d.name} with a retry waiting`).toBe('failed');
    expect(d.current_attempt_id).toBe(d.retry_attempt_id);
    const failed = s.attempts.find((a) => a.id === d.retry_attempt_id)!;
    expect([failed.kind, failed.state]).toEqual(['deploy', 'failed']);
    expect(['exit_nonzero', 'timeout']).toContain(failed.reason);
  }
  for (const a of s.attempts.filter((x) => x.retry_number != null)) {
    const before = s.attempts.find((x) => x.deployment_id === a.deployment_id && x.number === a.number - 1)!;
    const schedules = scheduled.filter((e) => e.attempt_id === before.id).map((e) => JSON.parse(e.data));
    expect(
      schedules.map((x) => x.number),
      `schedule consumed by ${a.id}`,
    ).toEqual([Number(a.retry_number)]);
    expect(a.requested_by).toBe('retry');
  }
  for (const e of scheduled) {
    const failed = s.attempts.find((a) => a.id === e.attempt_id)!;
    expect(JSON.parse(e.data).number).toBe(Number(failed.retry_number ?? 0) + 1);
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    process.kill(pid, 'SIGKILL');
  }
}

/** Nothing more happens: well past every backoff of these plans, and a pass of the starter too. */
async function quiet(engine: Lifeline): Promise<void> {
  await new Promise((r) => setTimeout(r, 400));
  expect(await engine.startDueRetries()).toBe(0);
}

describe.each(DIALECTS)('automatic retry (SPEC §9.1) on %s', (dialect) => {
  async function open(dir = tempDir(), extra: Record<string, unknown> = {}): Promise<Lifeline> {
    const e = await startEngine(dir, { plans, ...extra }, dialect);
    engines.push(e);
    return e;
  }

  it('a plan failing twice then succeeding ends ready after exactly two retries, each within its growing cap', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'flaky', plan: 'flaky' }, OPERATOR);
    await engine.startDeploy('flaky', {}, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('flaky')).state === 'ready', 'ready', 60_000);
    const list = await attempts(engine, 'flaky');
    expect(list.map((a) => [a.number, a.state, a.reason, a.requested_by])).toEqual([
      [1, 'failed', 'exit_nonzero', 'ci'],
      [2, 'failed', 'exit_nonzero', 'retry'],
      [3, 'succeeded', null, 'retry'],
    ]);
    const events = await allEvents(engine, 'flaky');
    const scheduled = ofType(events, 'retry_scheduled');
    expect(scheduled.map((e) => [e.attempt_id, e.data.number, e.data.of])).toEqual([
      [list[0].id, 1, 3],
      [list[1].id, 2, 3],
    ]);
    const policy = { max: 3, backoffMs: 50, maxBackoffMs: 1000 };
    const delays = scheduled.map((e, i) => {
      const delay = Date.parse(e.data.at as string) - Date.parse(list[i].ended_at!);
      // Full jitter: anywhere from the failure to the cap of retry n, which doubles. Never before the
      // failure; later than the cap by at most the latency of the database clock's read (attempt-writes.ts).
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(retryCapMs(i + 1, policy) + DB_READ_SLACK_MS);
      // The retry never starts before it is due.
      expect(Date.parse(list[i + 1].queued_at)).toBeGreaterThanOrEqual(Date.parse(e.data.at as string));
      return delay;
    });
    expect(delays).toHaveLength(2);
    expect(retryCapMs(2, policy)).toBeGreaterThan(retryCapMs(1, policy));
    // The schedule is written with the failure: one transaction, right after its attempt_end.
    for (const s of scheduled) {
      const end = events.find((e) => e.type === 'attempt_end' && e.attempt_id === s.attempt_id)!;
      expect(s.seq).toBe(end.seq + 1);
    }
    const starts = (await engine.listTransitions('flaky')).items.filter((t) => t.to === 'deploying');
    expect(starts.map((t) => [t.actor, t.reason])).toEqual([
      ['ci', null],
      ['retry', 'retry 1/3'],
      ['retry', 'retry 2/3'],
    ]);
    expect((await engine.getDeployment('flaky')).retry).toBeNull();
    expect(ofType(events, 'retry_exhausted')).toEqual([]);
    await expectRetryInvariants(engine);
  });

  it('while a retry waits the deployment stays failed and says which retry comes when', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'waits', plan: 'flakylater' }, OPERATOR);
    const first = await ended(engine, (await engine.startDeploy('waits', {}, OPERATOR)).id);
    const dep = await waitFor(async () => {
      const d = await engine.getDeployment('waits');
      return d.retry ? d : null;
    }, 'the schedule');
    expect(dep.state).toBe('failed');
    expect(dep.retry).toMatchObject({ number: 1, of: 3 });
    const delay = Date.parse(dep.retry!.at) - Date.parse(first.ended_at!);
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(20 * 86_400_000);
    expect(await engine.startDueRetries()).toBe(0); // not due
  });

  it("a retry reruns the failed attempt's params, secrets included, and masks them like any attempt", async () => {
    const dir = tempDir();
    const engine = await open(dir);
    const dep = await engine.createDeployment(
      { name: 'sec', plan: 'flakysecret', params: { password: 's3cr3t-retry', size: 'small' } },
      OPERATOR,
    );
    await engine.startDeploy('sec', { params: { size: 'big' } }, OPERATOR);
    await waitFor(async () => (await engine.getDeployment('sec')).state === 'ready', 'ready', 60_000);
    const runs = fs
      .readFileSync(path.join(dir, 'workspaces', dep.id, 'flaky_params'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(runs).toEqual([
      { password: 's3cr3t-retry', size: 'big' },
      { password: 's3cr3t-retry', size: 'big' },
      { password: 's3cr3t-retry', size: 'big' },
    ]);
    const list = await attempts(engine, 'sec');
    expect(list.map((a) => a.requested_by)).toEqual(['ci', 'retry', 'retry']);
    for (const a of list) expect(a.params).toEqual({ password: '***', size: 'big' });
    expect(JSON.stringify(await allEvents(engine, 'sec'))).not.toContain('s3cr3t-retry');
  });

  it('a deploy that timed out schedules a retry too', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'to', plan: 'overrun' }, OPERATOR);
    const a = await ended(engine, (await engine.startDeploy('to', {}, OPERATOR)).id);
    expect(a).toMatchObject({ state: 'failed', reason: 'timeout' });
    const d = await waitFor(async () => {
      const x = await engine.getDeployment('to');
      return x.retry ? x : null;
    }, 'the schedule');
    expect(d.retry).toMatchObject({ number: 1, of: 3 });
    expect(ofType(await allEvents(engine, 'to'), 'retry_scheduled')).toHaveLength(1);
  });

  it('exhausted retries append retry_exhausted and leave the deployment failed', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'exh', plan: 'alwaysfails' }, OPERATOR);
    await engine.startDeploy('exh', {}, OPERATOR);
    const exhausted = await waitFor(
      async () => ofType(await allEvents(engine, 'exh'), 'retry_exhausted')[0],
      'retry_exhausted',
      60_000,
    );
    const list = await attempts(engine, 'exh');
    expect(list.map((a) => [a.state, a.requested_by])).toEqual([
      ['failed', 'ci'],
      ['failed', 'retry'],
      ['failed', 'retry'],
    ]);
    expect(exhausted).toMatchObject({ attempt_id: list[2].id, data: { number: 2, of: 2 } });
    const d = await engine.getDeployment('exh');
    expect(d).toMatchObject({ state: 'failed', retry: null });
    await quiet(engine);
    expect(await attempts(engine, 'exh')).toHaveLength(3);
    await expectRetryInvariants(engine);
  });

  it('a cancelled, runner_error, unknown or unverified deploy is never retried', async () => {
    const dir = tempDir();
    const engine = await open(dir);
    // cancelled while running
    await engine.createDeployment({ name: 'cx', plan: 'sleepy' }, OPERATOR);
    const cx = await engine.startDeploy('cx', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(cx.id)).state === 'running', 'running');
    await engine.cancel('cx', OPERATOR);
    expect(await ended(engine, cx.id)).toMatchObject({ state: 'cancelled', reason: 'cancelled' });
    // runner_error: the program is missing
    await engine.createDeployment({ name: 're', plan: 'absent' }, OPERATOR);
    const re = await ended(engine, (await engine.startDeploy('re', {}, OPERATOR)).id);
    expect(re).toMatchObject({ state: 'failed', reason: 'runner_error' });
    // unknown: the process and its supervisor killed, so no exit record
    await engine.createDeployment({ name: 'un', plan: 'sleepy' }, OPERATOR);
    const un = await engine.startDeploy('un', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(un.id)).state === 'running', 'running');
    const runDir = path.join(dir, 'attempts', un.id);
    killGroup(readSupervisor(runDir)!.pid);
    killGroup(readProcess(runDir)!.pid);
    expect(await ended(engine, un.id)).toMatchObject({ state: 'unknown', reason: 'exit_unobserved' });
    // unverified: exit 0, but the check says failed
    const ck = await engine.createDeployment({ name: 'ck', plan: 'checked' }, OPERATOR);
    const ws = path.join(dir, 'workspaces', ck.id);
    fs.mkdirSync(ws, { recursive: true });
    fs.writeFileSync(path.join(ws, 'check_rc'), '1');
    const uv = await ended(engine, (await engine.startDeploy('ck', {}, OPERATOR)).id);
    expect(uv).toMatchObject({ state: 'failed', reason: 'unverified' });

    await quiet(engine);
    for (const name of ['cx', 're', 'un', 'ck']) {
      expect(await attempts(engine, name), name).toHaveLength(1);
      expect((await engine.getDeployment(name)).retry, name).toBeNull();
      const types = (await allEvents(engine, name)).map((e) => e.type);
      expect(
        types.filter((t) => t.startsWith('retry_')),
        name,
      ).toEqual([]);
    }
  });

  it('an operator deploy during the wait clears the schedule, and its own failure counts from 1 again', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'op', plan: 'flakylater' }, OPERATOR);
    await ended(engine, (await engine.startDeploy('op', {}, OPERATOR)).id);
    await waitFor(async () => (await engine.getDeployment('op')).retry, 'the schedule');
    const second = await engine.startDeploy('op', {}, OPERATOR);
    expect(second.requested_by).toBe('ci');
    await ended(engine, second.id);
    const d = await waitFor(async () => {
      const x = await engine.getDeployment('op');
      return x.retry ? x : null;
    }, 'the new schedule');
    expect(d.retry!.number).toBe(1);
    const scheduled = ofType(await allEvents(engine, 'op'), 'retry_scheduled');
    expect(scheduled.map((e) => e.data.number)).toEqual([1, 1]);
    expect(await attempts(engine, 'op')).toHaveLength(2);
    await expectRetryInvariants(engine);
  });

  it('cancel during the wait answers with the failed attempt, appends retry_cancelled, and no attempt starts', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'cw', plan: 'flakylater' }, OPERATOR);
    const first = await ended(engine, (await engine.startDeploy('cw', {}, OPERATOR)).id);
    const waiting = await waitFor(async () => (await engine.getDeployment('cw')).retry, 'the schedule');
    const before = await engine.getDeployment('cw');
    const answer = await engine.cancel('cw', OPERATOR);
    expect(answer).toMatchObject({ id: first.id, state: 'failed' });
    const after = await engine.getDeployment('cw');
    expect(after).toMatchObject({ state: 'failed', retry: null, version: before.version });
    const cancelled = ofType(await allEvents(engine, 'cw'), 'retry_cancelled');
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]).toMatchObject({
      attempt_id: first.id,
      data: { number: 1, of: 3, at: waiting.at, actor: 'ci' },
    });
    // Nothing left to cancel: the ordinary refusal.
    await expect(engine.cancel('cw', OPERATOR)).rejects.toMatchObject({ code: 'NO_INFLIGHT_ATTEMPT' });
    expect(await engine.startDueRetries()).toBe(0);
    expect(await attempts(engine, 'cw')).toHaveLength(1);
  });

  it('a retry that can no longer start (its params fail the changed plan) is dropped with retry_cancelled', async () => {
    const dir = tempDir();
    const before = await open(dir);
    await before.createDeployment({ name: 'sch', plan: 'flakylater', params: { size: 'big' } }, OPERATOR);
    const first = await ended(before, (await before.startDeploy('sch', {}, OPERATOR)).id);
    await waitFor(async () => (await before.getDeployment('sch')).retry, 'the schedule');
    await before.close();
    engines = engines.filter((e) => e !== before);
    const strict = {
      ...plans,
      flakylater: { ...plans.flakylater, params: { type: 'object', additionalProperties: false } },
    };
    const after = await open(dir, { plans: strict });
    await after.store.db.updateTable('deployments').set({ retry_at: new Date().toISOString() }).execute();
    expect(await after.startDueRetries()).toBe(0);
    const d = await after.getDeployment('sch');
    expect(d).toMatchObject({ state: 'failed', retry: null });
    const cancelled = ofType(await allEvents(after, 'sch'), 'retry_cancelled');
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]).toMatchObject({ attempt_id: first.id, data: { number: 1, of: 3, actor: 'retry' } });
    expect(cancelled[0].data.detail).toMatch(/params no longer match plan flakylater/);
    expect(await attempts(after, 'sch')).toHaveLength(1);
  });

  it('teardown and delete clear a waiting retry', async () => {
    const engine = await open();
    await engine.createDeployment({ name: 'td', plan: 'flakylater' }, OPERATOR);
    await ended(engine, (await engine.startDeploy('td', {}, OPERATOR)).id);
    await waitFor(async () => (await engine.getDeployment('td')).retry, 'the schedule');
    await engine.teardown('td', { confirm: 'td' }, OPERATOR);
    expect((await engine.getDeployment('td')).retry).toBeNull();
    await waitFor(async () => (await engine.getDeployment('td')).state === 'torn_down', 'torn down');

    const del = await engine.createDeployment({ name: 'dl', plan: 'flakylater' }, OPERATOR);
    await ended(engine, (await engine.startDeploy('dl', {}, OPERATOR)).id);
    await waitFor(async () => (await engine.getDeployment('dl')).retry, 'the schedule');
    await engine.deleteDeployment('dl', { force: true }, { name: 'alice', role: 'admin' });
    const row = await engine.store.db
      .selectFrom('deployments')
      .select(['retry_at', 'retry_attempt_id'])
      .where('id', '=', del.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ retry_at: null, retry_attempt_id: null });
  });
});

describe('automatic retry across instances', () => {
  it('a due retry on Postgres with two instances starts exactly once', async () => {
    const dirA = tempDir();
    const db = await dbUrlFor('postgres', dirA);
    const counter = path.join(tempDir(), 'runs');
    const shared = { ...plans, flaky: { ...plans.flaky, env: { FLAKY_FILE: counter } } };
    const fast = { plans: shared, reap_interval: '100ms' };
    const open = async (dir: string) => {
      const e = await openLifeline({ config: testConfig(dir, fast, db), logger: quietLogger() });
      await e.start();
      engines.push(e);
      return e;
    };
    const a = await open(dirA);
    const b = await open(tempDir());
    await a.createDeployment({ name: 'twice', plan: 'flaky' }, OPERATOR);
    await a.startDeploy('twice', {}, OPERATOR);
    // Both instances race for every due retry: their timers, their reconcile passes, and these calls.
    let ready = false;
    const race = (async () => {
      while (!ready) {
        await Promise.all([a.startDueRetries(), b.startDueRetries(), a.startDueRetries()]);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitFor(async () => (await b.getDeployment('twice')).state === 'ready', 'ready', 60_000);
    ready = true;
    await race;
    const list = await attempts(a, 'twice');
    expect(list.map((x) => [x.number, x.state, x.requested_by])).toEqual([
      [1, 'failed', 'ci'],
      [2, 'failed', 'retry'],
      [3, 'succeeded', 'retry'],
    ]);
    const starts = (await a.listTransitions('twice')).items.filter((t) => t.to === 'deploying');
    expect(starts.map((t) => t.reason)).toEqual([null, 'retry 1/3', 'retry 2/3']);
    const events = await allEvents(b, 'twice');
    expect(ofType(events, 'attempt_start')).toHaveLength(3);
    expect(ofType(events, 'retry_scheduled')).toHaveLength(2);
    await expectRetryInvariants(a);
  });
});
