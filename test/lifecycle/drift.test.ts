// Drift (SPEC §14.2) with real processes, on SQLite and Postgres: scheduled checks of ready
// deployments, drift detected and cleared (and folded from the events), never during an attempt, a
// verdict that raced a deploy ignored, a manual check under the same rule, self-heal bounded per day,
// and two instances on one Postgres database checking each due slot once.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LifelineEvent } from '../../src/domain/types.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
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
const noVerify = { deploy: false, teardown: false };
const plans = {
  ...fixturePlans(),
  watched: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: p('check.sh'),
    check_every: '1s',
    verify: noVerify,
  },
  // A deploy that takes a while (2.5 s: two check slots or more pass during it), once the workspace
  // file `slow` says so: the schedule must wait for it. The first deploy, before the file, is quick.
  slowdeploy: {
    deploy: [
      '/bin/sh',
      '-c',
      'echo "deploying"; if [ -f "$LIFELINE_WORKSPACE/slow" ]; then exec sleep 2.5; fi',
    ],
    teardown: p('ok.sh'),
    check: p('check.sh'),
    check_every: '1s',
    verify: noVerify,
  },
  // A check that takes a while: a deploy accepted meanwhile makes its verdict stale. The test deploys
  // one poll (25 ms) and one write after the check began; the check sleeps a second.
  slowcheck: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: p('check.sh'),
    check_every: '1s',
    verify: noVerify,
    env: { CHECK_SLEEP: '1' },
  },
  healer: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: p('check.sh'),
    check_every: '1s',
    verify: noVerify,
    self_heal: true,
    retry: { max: 2, backoff: '10ms' },
  },
};

let engines: Lifeline[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

async function open(dir: string, dialect: 'sqlite' | 'postgres'): Promise<Lifeline> {
  const e = await startEngine(dir, { plans, reap_interval: '200ms' }, dialect);
  engines.push(e);
  return e;
}

async function allEvents(engine: Lifeline, name: string): Promise<LifelineEvent[]> {
  return (await engine.listEvents({ after: 0, limit: 1000, deployment: name })).items;
}
const ofType = (events: LifelineEvent[], type: string) => events.filter((e) => e.type === type);
const scheduled = (events: LifelineEvent[]) =>
  events.filter((e) => e.type === 'check_result' && e.data.actor === 'schedule');

/** The check fixture's verdict for a deployment: 0 up, 3 absent, anything else failed. */
async function setVerdict(engine: Lifeline, dir: string, name: string, rc: number): Promise<void> {
  const dep = await engine.getDeployment(name);
  const ws = path.join(dir, 'workspaces', dep.id);
  fs.mkdirSync(ws, { recursive: true });
  fs.writeFileSync(path.join(ws, 'check_rc'), `${rc}\n`);
}

async function deployed(engine: Lifeline, name: string, plan: string): Promise<void> {
  await engine.createDeployment({ name, plan }, OPERATOR);
  await engine.startDeploy(name, {}, OPERATOR);
  await waitFor(async () => (await engine.getDeployment(name)).state === 'ready', `${name} ready`);
}

async function expectInvariants(engine: Lifeline): Promise<void> {
  await engine.drift.idle();
  await engine.settle();
  const s = await snapshotOf(engine.store.db);
  expectStoreInvariants(s);
  expectAttemptHistories(s);
}

describe.each(DIALECTS)('drift on %s', (dialect) => {
  it('scheduled checks find drift, keep the state, and clear it; drift folds from the events', async () => {
    const dir = tempDir();
    const engine = await open(dir, dialect);
    await deployed(engine, 'w1', 'watched');
    await waitFor(async () => scheduled(await allEvents(engine, 'w1')).length >= 1, 'a scheduled check');
    expect((await engine.getDeployment('w1')).drift).toBeNull();

    await setVerdict(engine, dir, 'w1', 3);
    const absent = await waitFor(async () => (await engine.getDeployment('w1')).drift, 'drift');
    expect(absent.verdict).toBe('absent');
    const dep = await engine.getDeployment('w1');
    expect(dep.state).toBe('ready');
    const versionAtDrift = dep.version;
    // More checks with the same verdict: drift_detected only once.
    const seen = scheduled(await allEvents(engine, 'w1')).length;
    await waitFor(async () => scheduled(await allEvents(engine, 'w1')).length >= seen + 2, 'two more checks');
    let events = await allEvents(engine, 'w1');
    expect(ofType(events, 'drift_detected')).toHaveLength(1);
    expect(ofType(events, 'drift_detected')[0].data).toMatchObject({
      verdict: 'absent',
      since: absent.since,
    });

    // Another failing verdict: appended again, since kept.
    await setVerdict(engine, dir, 'w1', 1);
    await waitFor(async () => (await engine.getDeployment('w1')).drift?.verdict === 'failed', 'failed');
    events = await allEvents(engine, 'w1');
    expect(ofType(events, 'drift_detected').map((e) => e.data.verdict)).toEqual(['absent', 'failed']);
    expect((await engine.getDeployment('w1')).drift?.since).toBe(absent.since);

    await setVerdict(engine, dir, 'w1', 0);
    await waitFor(async () => (await engine.getDeployment('w1')).drift === null, 'drift cleared');
    events = await allEvents(engine, 'w1');
    const cleared = ofType(events, 'drift_cleared');
    expect(cleared).toHaveLength(1);
    expect(cleared[0].data).toMatchObject({
      by: 'check',
      verdict: 'failed',
      since: absent.since,
      actor: 'schedule',
    });
    // Drift is no state write: the version did not move.
    expect((await engine.getDeployment('w1')).version).toBe(versionAtDrift);
    // Each drift event follows its check_result in the same write.
    for (const e of [...ofType(events, 'drift_detected'), ...cleared]) {
      const before = events.find((x) => x.seq === e.seq - 1);
      expect(before?.type, `event before ${e.type} ${e.seq}`).toBe('check_result');
    }
    await expectInvariants(engine);
  });

  it('never checks during an attempt; a deploy clears drift and the schedule resumes after it', async () => {
    const dir = tempDir();
    const engine = await open(dir, dialect);
    await deployed(engine, 's1', 'slowdeploy');
    await setVerdict(engine, dir, 's1', 3);
    await waitFor(async () => (await engine.getDeployment('s1')).drift, 'drift');
    const ws = path.join(dir, 'workspaces', (await engine.getDeployment('s1')).id);
    fs.writeFileSync(path.join(ws, 'slow'), '');
    const att = await engine.startDeploy('s1', {}, OPERATOR);
    expect((await engine.getDeployment('s1')).drift).toBeNull();
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'succeeded', 'deploy ends');
    await waitFor(async () => {
      const ev = await allEvents(engine, 's1');
      const ready = ev.filter(
        (e) => e.type === 'state_transition' && e.data.entity === 'deployment' && e.data.to === 'ready',
      );
      return scheduled(ev).some((c) => c.seq > ready.at(-1)!.seq);
    }, 'a check after the deploy');
    const events = await allEvents(engine, 's1');
    const moves = events.filter((e) => e.type === 'state_transition' && e.data.entity === 'deployment');
    const start = moves.find((e) => e.attempt_id === att.id && e.data.to === 'deploying')!;
    const end = moves.find((e) => e.attempt_id === att.id && e.data.to === 'ready')!;
    expect(scheduled(events).filter((c) => c.seq > start.seq && c.seq < end.seq)).toEqual([]);
    const cleared = ofType(events, 'drift_cleared');
    expect(cleared).toHaveLength(1);
    expect(cleared[0].data).toMatchObject({ by: 'deploy', actor: 'ci', verdict: 'absent' });
    expect(cleared[0].seq).toBeGreaterThan(start.seq);
    await expectInvariants(engine);
  });

  it('a verdict that raced a deploy is recorded as stale and changes nothing', async () => {
    const dir = tempDir();
    const engine = await open(dir, dialect);
    await deployed(engine, 'r1', 'slowcheck');
    await setVerdict(engine, dir, 'r1', 3);
    const dep = await engine.getDeployment('r1');
    const runs = path.join(dir, 'workspaces', dep.id, 'check_runs');
    // The check has begun (it records its run, then sleeps 1 s): deploy now.
    await waitFor(() => fs.existsSync(runs), 'a scheduled check to begin', 15_000);
    await engine.startDeploy('r1', {}, OPERATOR);
    const stale = await waitFor(
      async () =>
        (await allEvents(engine, 'r1')).find((e) => e.type === 'check_result' && e.data.stale === true),
      'the stale verdict',
      15_000,
    );
    expect(stale.data).toMatchObject({ verdict: 'absent', actor: 'schedule' });
    const events = await allEvents(engine, 'r1');
    // Drift comes, if at all, only from a later check of the new stay in ready.
    expect(events.find((e) => e.seq === stale.seq + 1)?.type).not.toBe('drift_detected');
    for (const d of ofType(events, 'drift_detected')) {
      const result = events.find((e) => e.seq === d.seq - 1)!;
      expect(result.type).toBe('check_result');
      expect(result.data.stale).toBeUndefined();
    }
    await expectInvariants(engine);
  });

  it('a manual check on a ready deployment follows the same drift rule', async () => {
    const dir = tempDir();
    const engine = await open(dir, dialect);
    await deployed(engine, 'm1', 'ok'); // no check_every: only manual checks
    await setVerdict(engine, dir, 'm1', 3);
    await engine.check('m1', OPERATOR);
    const drift = await waitFor(async () => (await engine.getDeployment('m1')).drift, 'drift');
    expect(drift.verdict).toBe('absent');
    expect((await engine.getDeployment('m1')).state).toBe('ready');
    await setVerdict(engine, dir, 'm1', 0);
    await waitFor(async () => {
      try {
        await engine.check('m1', OPERATOR);
        return true;
      } catch {
        return false; // the last one is still running
      }
    }, 'a second check accepted');
    await waitFor(async () => (await engine.getDeployment('m1')).drift === null, 'cleared');
    // An `up` on a deployment that is not drifted changes nothing but is still recorded.
    await waitFor(async () => {
      try {
        await engine.check('m1', OPERATOR);
        return true;
      } catch {
        return false;
      }
    }, 'a third check accepted');
    await waitFor(
      async () => ofType(await allEvents(engine, 'm1'), 'check_result').length === 4,
      'the third check_result',
    );
    const events = await allEvents(engine, 'm1');
    // The deploy's verifying check, then the three manual ones.
    expect(ofType(events, 'check_result').map((e) => e.data.verdict)).toEqual(['up', 'absent', 'up', 'up']);
    expect(ofType(events, 'drift_detected').map((e) => e.data.actor)).toEqual(['ci']);
    expect(ofType(events, 'drift_cleared').map((e) => e.data.by)).toEqual(['check']);
    expect(scheduled(events)).toEqual([]);
    await expectInvariants(engine);
  });

  it('self_heal redeploys a drifted deployment, at most retry.max times a day', async () => {
    const dir = tempDir();
    const engine = await open(dir, dialect);
    await deployed(engine, 'h1', 'healer');
    await setVerdict(engine, dir, 'h1', 3); // stays absent whatever the deploys do
    const heals = async () =>
      (await engine.listAttempts('h1', { limit: 100 })).items.filter((a) => a.requested_by === 'self_heal');
    await waitFor(async () => (await heals()).length === 2, 'two self-heals', 30_000);
    // After the second heal's deploy, the next drift finds the day's cap reached: no heal is scheduled.
    const capped = await waitFor(async () => {
      const ev = await allEvents(engine, 'h1');
      const last = (await heals())[0];
      const end = ev.find(
        (e) => e.type === 'state_transition' && e.attempt_id === last.id && e.data.to === 'ready',
      );
      return end ? ofType(ev, 'drift_detected').find((d) => d.seq > end.seq) : undefined;
    }, 'drift after the last heal');
    expect(capped.data.heal_at).toBeUndefined();
    const dep = await engine.getDeployment('h1');
    expect(dep.drift).toMatchObject({ verdict: 'absent', heal_at: null });
    expect(dep.state).toBe('ready');
    const seen = scheduled(await allEvents(engine, 'h1')).length;
    await waitFor(async () => scheduled(await allEvents(engine, 'h1')).length >= seen + 2, 'two more checks');
    expect(await heals()).toHaveLength(2);
    const transitions = (await engine.listTransitions('h1')).items.filter((t) => t.actor === 'self_heal');
    expect(transitions.filter((t) => t.to === 'deploying').map((t) => t.reason)).toEqual([
      'self_heal 1/2',
      'self_heal 2/2',
    ]);
    const events = await allEvents(engine, 'h1');
    // Each heal's deploy ended the drift it was started for.
    expect(ofType(events, 'drift_cleared').filter((e) => e.data.actor === 'self_heal')).toHaveLength(2);
    await expectInvariants(engine);
  });
});

describe('drift on Postgres with two instances', () => {
  it('each due check runs once', async () => {
    const dirA = tempDir();
    const db = await dbUrlFor('postgres', dirA);
    // The verdict comes from the plan's env: both instances' workspaces answer alike.
    const shared = { ...plans, watched: { ...plans.watched, env: { CHECK_RC: '0' } } };
    const openOne = async (dir: string) => {
      const e = await openLifeline({
        config: testConfig(dir, { plans: shared, reap_interval: '100ms' }, db),
        logger: quietLogger(),
      });
      await e.start();
      engines.push(e);
      return e;
    };
    const a = await openOne(dirA);
    const b = await openOne(tempDir());
    const names = ['t1', 't2', 't3', 't4', 't5', 't6'];
    for (const n of names) await deployed(a, n, 'watched');
    // Both race for every due check: their timers, their passes, and these calls.
    let done = false;
    const race = (async () => {
      while (!done) {
        await Promise.all([a.drift.runDue(), b.drift.runDue(), a.drift.runDue()]);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await waitFor(
      async () => {
        for (const n of names) if (scheduled(await allEvents(a, n)).length < 4) return false;
        return true;
      },
      'four scheduled checks of each',
      60_000,
    );
    done = true;
    await race;
    await a.drift.idle();
    await b.drift.idle();
    for (const n of names) {
      const dues = scheduled(await allEvents(a, n)).map((e) => e.data.due as string);
      expect(new Set(dues).size, `slots of ${n} checked once each`).toBe(dues.length);
    }
    await expectInvariants(a);
  });
});
