// Verified outcomes (SPEC §9.3) with real processes: after exit 0 the plan's check decides whether a
// deploy is `ready` and a teardown `torn_down`; a check lost with the engine runs again on restart.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Attempt } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { FIXTURES, fixturePlans, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const plans = {
  ...fixturePlans(),
  // teardown exits 0 but leaves the thing up: the check says `up`
  leaves: { deploy: p('ok.sh'), teardown: p('sleep.sh'), check: p('check.sh'), env: { SLEEP_SECONDS: '0' } },
  unchecked: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: p('check.sh'),
    env: { CHECK_RC: '1' },
    verify: { deploy: false },
  },
  // Writes its parent's command line: the runner's guard (a fork of runner.pl), not the engine's.
  parentcheck: {
    deploy: p('ok.sh'),
    teardown: p('ok.sh'),
    check: ['sh', '-c', 'tr "\\0" " " < /proc/$PPID/cmdline > "$LIFELINE_WORKSPACE/check_parent"; echo seen'],
  },
  slowcheck: { deploy: p('ok.sh'), teardown: p('ok.sh'), check: p('check.sh'), env: { CHECK_SLEEP: '6' } },
};

let engines: Lifeline[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
});

async function open(dir: string): Promise<Lifeline> {
  const e = await startEngine(dir, { plans });
  engines.push(e);
  return e;
}

async function ended(engine: Lifeline, id: string): Promise<Attempt> {
  return waitFor(async () => {
    const a = await engine.getAttempt(id);
    return a.state !== 'queued' && a.state !== 'running' ? a : null;
  }, `attempt ${id} to end`);
}

async function eventsOf(engine: Lifeline, attemptId: string) {
  const page = await engine.listEvents({ after: 0, limit: 1000 });
  return page.items.filter((e) => e.attempt_id === attemptId);
}

function workspace(dir: string, depId: string): string {
  const ws = path.join(dir, 'workspaces', depId);
  fs.mkdirSync(ws, { recursive: true });
  return ws;
}

describe('verified outcomes (SPEC §9.3)', () => {
  it('deploy exit 0 + check up: ready, the check output in the log and a check_result before the end', async () => {
    const engine = await open(tempDir());
    await engine.createDeployment({ name: 'v1', plan: 'ok' }, OPERATOR);
    const a = await ended(engine, (await engine.startDeploy('v1', {}, OPERATOR)).id);
    expect(a).toMatchObject({ state: 'succeeded', rc: 0, reason: null });
    expect((await engine.getDeployment('v1')).state).toBe('ready');
    const ev = await eventsOf(engine, a.id);
    const types = ev.map((e) => e.type);
    expect(types.indexOf('check_result')).toBeLessThan(types.indexOf('attempt_end'));
    expect(ev.find((e) => e.type === 'check_result')!.data).toMatchObject({ rc: 0, verdict: 'up' });
    expect(
      ev.filter((e) => e.type === 'log_line' && e.data.stream === 'check').map((e) => e.data.text),
    ).toEqual(['checking v1']);
  });

  it('deploy exit 0 + check failed: attempt failed/unverified rc 0, deployment failed', async () => {
    const dir = tempDir();
    const engine = await open(dir);
    const dep = await engine.createDeployment({ name: 'v2', plan: 'ok' }, OPERATOR);
    fs.writeFileSync(path.join(workspace(dir, dep.id), 'check_rc'), '1');
    const a = await ended(engine, (await engine.startDeploy('v2', {}, OPERATOR)).id);
    expect(a).toMatchObject({ state: 'failed', rc: 0, reason: 'unverified' });
    const d = await engine.getDeployment('v2');
    expect(d.state).toBe('failed');
    const ev = await eventsOf(engine, a.id);
    expect(ev.find((e) => e.type === 'check_result')!.data).toMatchObject({ rc: 1, verdict: 'failed' });
    expect(ev.find((e) => e.type === 'attempt_end')!.data).toMatchObject({
      state: 'failed',
      reason: 'unverified',
    });
  });

  it('teardown exit 0 + check up: failed/unverified; a teardown the check finds absent is torn_down', async () => {
    const engine = await open(tempDir());
    await engine.createDeployment({ name: 'v3', plan: 'leaves' }, OPERATOR);
    await ended(engine, (await engine.startDeploy('v3', {}, OPERATOR)).id);
    const t = await engine.teardown('v3', { confirm: 'v3' }, OPERATOR);
    expect(await ended(engine, t.id)).toMatchObject({ state: 'failed', rc: 0, reason: 'unverified' });
    expect((await engine.getDeployment('v3')).state).toBe('failed');

    await engine.createDeployment({ name: 'v4', plan: 'ok' }, OPERATOR);
    await ended(engine, (await engine.startDeploy('v4', {}, OPERATOR)).id);
    const t2 = await engine.teardown('v4', { confirm: 'v4' }, OPERATOR);
    expect(await ended(engine, t2.id)).toMatchObject({ state: 'succeeded', rc: 0 });
    expect((await engine.getDeployment('v4')).state).toBe('torn_down');
  });

  it('the verifying check is run by the runner, not forked by the engine, and its lines are kept', async () => {
    const dir = tempDir();
    const engine = await open(dir);
    const dep = await engine.createDeployment({ name: 'v7', plan: 'parentcheck' }, OPERATOR);
    const a = await ended(engine, (await engine.startDeploy('v7', {}, OPERATOR)).id);
    expect(a).toMatchObject({ state: 'succeeded', reason: null });
    expect(fs.readFileSync(path.join(workspace(dir, dep.id), 'check_parent'), 'utf8')).toContain('runner.pl');
    const ev = await eventsOf(engine, a.id);
    expect(
      ev.filter((e) => e.type === 'log_line' && e.data.stream === 'check').map((e) => e.data.text),
    ).toEqual(['seen']);
  });

  it('verify off: ready on exit 0 without running the check', async () => {
    const dir = tempDir();
    const engine = await open(dir);
    const dep = await engine.createDeployment({ name: 'v5', plan: 'unchecked' }, OPERATOR);
    const a = await ended(engine, (await engine.startDeploy('v5', {}, OPERATOR)).id);
    expect(a).toMatchObject({ state: 'succeeded', reason: null });
    expect((await engine.getDeployment('v5')).state).toBe('ready');
    expect((await eventsOf(engine, a.id)).some((e) => e.type === 'check_result')).toBe(false);
    expect(fs.existsSync(path.join(workspace(dir, dep.id), 'check_runs'))).toBe(false);
  });

  it('the engine closed while the check runs: the check runs again after restart and decides', async () => {
    const dir = tempDir();
    const first = await open(dir);
    const dep = await first.createDeployment({ name: 'v6', plan: 'slowcheck' }, OPERATOR);
    const ws = workspace(dir, dep.id);
    fs.writeFileSync(path.join(ws, 'check_rc'), '1');
    const att = await first.startDeploy('v6', {}, OPERATOR);
    const runs = path.join(ws, 'check_runs');
    await waitFor(() => fs.existsSync(runs), 'the check to start');
    const row = await first.getAttempt(att.id);
    expect(row.state).toBe('running'); // exited 0, still running while the check decides
    expect((await first.getDeployment('v6')).state).toBe('deploying');
    await first.close();
    engines = engines.filter((e) => e !== first);

    const second = await open(dir);
    const a = await ended(second, att.id);
    expect(a).toMatchObject({ state: 'failed', rc: 0, reason: 'unverified', recovered: true });
    expect(fs.readFileSync(runs, 'utf8').trim().split('\n')).toHaveLength(2);
    const ev = await eventsOf(second, att.id);
    expect(ev.filter((e) => e.type === 'check_result')).toHaveLength(1);
    expect(ev.filter((e) => e.type === 'attempt_end')).toHaveLength(1);
  });
});
