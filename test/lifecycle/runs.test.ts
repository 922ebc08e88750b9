// Stack runs on both stores (SPEC §12.4): units launch in dependency order, unblocked ones in parallel;
// on_failure stop vs continue (skipped); the resume; teardown in reverse; cancel; an unknown unit
// blocks what comes after it; one active run per stack and no direct unit writes meanwhile. Every
// unit is a stack-unit.sh plan that waits for the test to tell it its exit code, so each step is seen.
import path from 'node:path';
import { tellCtl } from '../helpers/fifo.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LifelineError } from '../../src/domain/errors.ts';
import { foldRun, type Run, type StepState } from '../../src/domain/stack-run.ts';
import { foldStack } from '../../src/domain/stack-state.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import {
  ADMIN,
  DIALECTS,
  FIXTURES,
  OPERATOR,
  fixturePlans,
  startEngine,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';

const unitPlan = {
  deploy: [path.join(FIXTURES, 'stack-unit.sh')],
  teardown: [path.join(FIXTURES, 'stack-unit.sh')],
  cancel_grace: '1s',
};

async function refusal(p: Promise<unknown>): Promise<LifelineError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof LifelineError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe.each(DIALECTS)('stack runs on %s', (dialect) => {
  let engine: Lifeline;
  let dir: string;
  beforeAll(async () => {
    dir = tempDir('lifeline-runs-');
    const gated = { ...unitPlan, concurrency: { key: 'one-host', limit: 1 } };
    engine = await startEngine(dir, { plans: { ...fixturePlans(), unit: unitPlan, gated } }, dialect);
  });
  afterAll(async () => {
    await engine.close();
  });

  const ids = async (stack: string) =>
    Object.fromEntries((await engine.getStack(stack)).units.map((u) => [u.deployment, u.deployment_id]));

  /** Tells the unit's waiting plan to exit with rc. */
  const tell = (depId: string, rc: number) => tellCtl(dir, depId, rc);

  const steps = (run: Run) => Object.fromEntries(run.steps.map((s) => [s.deployment, s.step]));
  const until = (runId: string, want: Record<string, StepState>, what: string) =>
    waitFor(async () => {
      const run = await engine.getRun(runId);
      const now = steps(run);
      return Object.entries(want).every(([k, v]) => now[k] === v) ? run : null;
    }, what);
  const ended = (runId: string) =>
    waitFor(async () => {
      const run = await engine.getRun(runId);
      return run.state !== 'queued' && run.state !== 'running' ? run : null;
    }, `run ${runId} to end`);

  /** Each unit's attempts, and invariants 10 and 11's bookkeeping: run and stack states are their folds. */
  async function expectHistory(stack: string, runId: string): Promise<void> {
    const events = (await engine.listEvents({ stack, limit: 1000 })).items;
    const run = await engine.getRun(runId);
    expect(foldRun(events.filter((e) => e.data.id === runId))).toEqual({
      state: run.state,
      version: run.version,
    });
    const s = await engine.getStack(stack);
    expect(foldStack(events).state).toBe(s.state);
    // Every step launched names one attempt of its unit, accepted for this run by its caller, once.
    for (const step of run.steps) {
      const launches = events.filter(
        (e) =>
          e.type === 'state_transition' &&
          e.data.entity === 'deployment' &&
          e.deployment_id === step.deployment_id &&
          e.data.reason === `stack run ${runId}`,
      );
      expect(launches.length, `launches of ${step.deployment}`).toBe(step.attempt_id ? 1 : 0);
      if (step.attempt_id) {
        expect(launches[0].attempt_id).toBe(step.attempt_id);
        expect((await engine.getAttempt(step.attempt_id)).requested_by).toBe(run.actor);
      }
    }
  }

  it('deploys in dependency order, unblocked units in parallel, and tells each its stack and inputs', async () => {
    await engine.createStack(
      {
        name: 'ord',
        units: [
          { key: 'net', plan: 'unit' },
          { key: 'vm', plan: 'unit', count: 2, after: ['net'] },
          { key: 'fin', plan: 'unit', after: ['vm'] },
        ],
      },
      OPERATOR,
    );
    const id = await ids('ord');
    const run = await engine.startStackRun('ord', 'deploy', {}, OPERATOR);
    expect(run).toMatchObject({ kind: 'deploy', stack: 'ord', actor: OPERATOR.name, on_failure: 'stop' });
    expect((await engine.getStack('ord')).state).toBe('deploying');
    await until(
      run.id,
      { 'ord-net': 'launched', 'ord-vm-1': 'waiting', 'ord-fin': 'waiting' },
      'net launched',
    );
    expect((await refusal(engine.startStackRun('ord', 'deploy', {}, OPERATOR))).code).toBe(
      'STACK_RUN_IN_PROGRESS',
    );
    expect((await refusal(engine.startDeploy('ord-fin', {}, OPERATOR))).code).toBe('STACK_RUN_IN_PROGRESS');
    await tell(id['ord-net'], 0);
    // Both vms launched while neither has ended: in parallel.
    await until(
      run.id,
      { 'ord-vm-1': 'launched', 'ord-vm-2': 'launched', 'ord-fin': 'waiting' },
      'vms launched',
    );
    await tell(id['ord-vm-1'], 0);
    await until(run.id, { 'ord-vm-1': 'succeeded' }, 'vm-1 recorded');
    expect(steps(await engine.getRun(run.id))['ord-fin']).toBe('waiting');
    await tell(id['ord-vm-2'], 0);
    const fin = await until(run.id, { 'ord-fin': 'launched' }, 'fin launched');
    await tell(id['ord-fin'], 0);
    const done = await ended(run.id);
    expect(done.state).toBe('succeeded');
    expect(Object.values(steps(done))).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect((await engine.getStack('ord')).state).toBe('ready');
    const finAttempt = fin.steps.find((s) => s.deployment === 'ord-fin')!.attempt_id!;
    const log = (await engine.readAttemptLog(finAttempt)).text;
    expect(log).toContain('stack=ord unit=fin index=1 kind=deploy');
    // The inputs are the outputs its dependencies published (SPEC §12.1, §12.2).
    expect(log).toContain(
      'inputs={"vm":{"ord-vm-1":{"unit":"vm","index":1},"ord-vm-2":{"unit":"vm","index":2}}}',
    );
    await expectHistory('ord', run.id);
    // Nothing changed since: a second deploy has nothing to do.
    const again = await engine.startStackRun('ord', 'deploy', {}, OPERATOR);
    expect(Object.values(steps(again)).every((s) => s === 'not_needed')).toBe(true);
    expect((await ended(again.id)).state).toBe('succeeded');

    // Teardown walks back: fin first, then the vms, then net.
    expect((await refusal(engine.startStackRun('ord', 'teardown', { confirm: 'nope' }, OPERATOR))).code).toBe(
      'TEARDOWN_CONFIRM_MISMATCH',
    );
    const down = await engine.startStackRun('ord', 'teardown', { confirm: 'ord' }, OPERATOR);
    await until(down.id, { 'ord-fin': 'launched', 'ord-vm-1': 'waiting', 'ord-net': 'waiting' }, 'fin first');
    expect((await engine.getStack('ord')).state).toBe('tearing_down');
    await tell(id['ord-fin'], 0);
    await until(
      down.id,
      { 'ord-vm-1': 'launched', 'ord-vm-2': 'launched', 'ord-net': 'waiting' },
      'vms next',
    );
    await tell(id['ord-vm-1'], 0);
    await tell(id['ord-vm-2'], 0);
    await until(down.id, { 'ord-net': 'launched' }, 'net last');
    await tell(id['ord-net'], 0);
    expect((await ended(down.id)).state).toBe('succeeded');
    expect((await engine.getStack('ord')).state).toBe('torn_down');
    await expectHistory('ord', down.id);
    const list = await engine.listRuns('ord', {});
    expect(list.items.map((r) => r.id)).toEqual([down.id, again.id, run.id]);
  });

  it('a unit held by a gate is told its stack and inputs when the gate opens, not only at accept', async () => {
    await engine.createStack(
      {
        name: 'gt',
        units: [
          { key: 'base', plan: 'unit' },
          { key: 'vm', plan: 'gated', count: 2, after: ['base'] },
        ],
      },
      OPERATOR,
    );
    const id = await ids('gt');
    const run = await engine.startStackRun('gt', 'deploy', {}, OPERATOR);
    await until(run.id, { 'gt-base': 'launched' }, 'base launched');
    await tell(id['gt-base'], 0);
    // Both accepted by the run; the limit of 1 holds one of them at its gate.
    const both = await until(run.id, { 'gt-vm-1': 'launched', 'gt-vm-2': 'launched' }, 'vms accepted');
    const vms = both.steps.filter((s) => s.key === 'vm');
    const attempts = await Promise.all(vms.map((s) => engine.getAttempt(s.attempt_id!)));
    const held = vms[attempts.findIndex((a) => a.waiting.length > 0)];
    const free = vms[attempts.findIndex((a) => a.waiting.length === 0)];
    expect(held && free, 'one vm held at its gate, one let through').toBeTruthy();
    await tell(free.deployment_id, 0);
    await tell(held.deployment_id, 0);
    expect((await ended(run.id)).state).toBe('succeeded');
    const log = (await engine.readAttemptLog(held.attempt_id!)).text;
    expect(log).toContain(`stack=gt unit=vm index=${held.index} kind=deploy`);
    expect(log).toContain('inputs={"base":{"gt-base":{"unit":"base","index":1}}}');
    await expectHistory('gt', run.id);
  });

  const failSpec = (name: string, onFailure: 'stop' | 'continue') => ({
    name,
    on_failure: onFailure,
    units: [
      { key: 'a', plan: 'unit' },
      { key: 'b', plan: 'unit', after: ['a'] },
      { key: 'x', plan: 'unit' },
      { key: 'c', plan: 'unit', after: ['x'] },
    ],
  });

  it('stop: after a unit fails nothing new launches, running units finish, the run fails; then the resume', async () => {
    await engine.createStack(failSpec('st', 'stop'), OPERATOR);
    const id = await ids('st');
    const run = await engine.startStackRun('st', 'deploy', {}, OPERATOR);
    await until(run.id, { 'st-a': 'launched', 'st-x': 'launched' }, 'a and x launched');
    await tell(id['st-a'], 1);
    await until(run.id, { 'st-a': 'failed' }, 'a failed');
    expect((await engine.getRun(run.id)).state).toBe('running'); // x still runs
    await tell(id['st-x'], 0);
    const done = await ended(run.id);
    expect(done.state).toBe('failed');
    expect(steps(done)).toEqual({
      'st-a': 'failed',
      'st-x': 'succeeded',
      'st-b': 'skipped',
      'st-c': 'skipped',
    });
    expect((await engine.getStack('st')).state).toBe('partial');
    await expectHistory('st', run.id);

    // The resume redeploys only what is not ready.
    const resume = await engine.startStackRun('st', 'deploy', {}, OPERATOR);
    expect(steps(resume)).toEqual({
      'st-a': 'waiting',
      'st-x': 'not_needed',
      'st-b': 'waiting',
      'st-c': 'waiting',
    });
    await until(resume.id, { 'st-a': 'launched', 'st-c': 'launched' }, 'a and c launched');
    await tell(id['st-a'], 0);
    await tell(id['st-c'], 0);
    await until(resume.id, { 'st-b': 'launched' }, 'b launched');
    await tell(id['st-b'], 0);
    expect((await ended(resume.id)).state).toBe('succeeded');
    expect((await engine.getStack('st')).state).toBe('ready');
    await expectHistory('st', resume.id);
  });

  it('continue: what is not blocked goes on, units behind a failed one are skipped', async () => {
    await engine.createStack(failSpec('ct', 'continue'), OPERATOR);
    const id = await ids('ct');
    const run = await engine.startStackRun('ct', 'deploy', {}, OPERATOR);
    await until(run.id, { 'ct-a': 'launched', 'ct-x': 'launched' }, 'a and x launched');
    await tell(id['ct-a'], 1);
    await until(run.id, { 'ct-a': 'failed', 'ct-b': 'skipped' }, 'b skipped');
    await tell(id['ct-x'], 0);
    await until(run.id, { 'ct-c': 'launched' }, 'c launched after x');
    await tell(id['ct-c'], 0);
    const done = await ended(run.id);
    expect(done.state).toBe('failed');
    expect(steps(done)).toEqual({
      'ct-a': 'failed',
      'ct-x': 'succeeded',
      'ct-b': 'skipped',
      'ct-c': 'succeeded',
    });
    await expectHistory('ct', run.id);
  });

  it('cancel: stops the launched units (the proven cancel), launches nothing more, ends cancelled', async () => {
    await engine.createStack(failSpec('cn', 'stop'), OPERATOR);
    const run = await engine.startStackRun('cn', 'deploy', {}, OPERATOR);
    await until(run.id, { 'cn-a': 'launched', 'cn-x': 'launched' }, 'a and x launched');
    await waitFor(
      async () => (await engine.getDeployment('cn-a')).current_attempt?.state === 'running',
      'a runs',
    );
    const c = await engine.cancelStackRun('cn', OPERATOR);
    expect(c.cancel_requested_at).not.toBeNull();
    const done = await ended(run.id);
    expect(done.state).toBe('cancelled');
    expect(steps(done)).toEqual({ 'cn-a': 'failed', 'cn-x': 'failed', 'cn-b': 'skipped', 'cn-c': 'skipped' });
    for (const s of done.steps.filter((x) => x.attempt_id)) {
      expect((await engine.getAttempt(s.attempt_id!)).state).toBe('cancelled');
    }
    expect((await refusal(engine.cancelStackRun('cn', OPERATOR))).code).toBe('NO_ACTIVE_RUN');
    await expectHistory('cn', run.id);
  });

  it('an unknown unit blocks what comes after it; the run ends unknown; force (admin) redeploys only it', async () => {
    await engine.createStack(failSpec('uk', 'stop'), OPERATOR);
    const id = await ids('uk');
    const run = await engine.startStackRun('uk', 'deploy', {}, OPERATOR);
    const launched = await until(run.id, { 'uk-a': 'launched', 'uk-x': 'launched' }, 'a and x launched');
    await waitFor(
      async () => (await engine.getDeployment('uk-a')).current_attempt?.state === 'running',
      'a runs',
    );
    // a's process and supervisor die without an exit record: its outcome is lost.
    const runDir = path.join(
      dir,
      'attempts',
      launched.steps.find((s) => s.deployment === 'uk-a')!.attempt_id!,
    );
    for (const who of [readSupervisor(runDir), readProcess(runDir)])
      if (who) process.kill(-who.pid, 'SIGKILL');
    await until(run.id, { 'uk-a': 'unknown' }, 'a unknown');
    await tell(id['uk-x'], 0);
    await until(run.id, { 'uk-c': 'launched' }, 'c goes on');
    expect((await engine.getRun(run.id)).state).toBe('running');
    await tell(id['uk-c'], 0);
    const done = await ended(run.id);
    expect(done.state).toBe('unknown');
    expect(steps(done)).toEqual({
      'uk-a': 'unknown',
      'uk-x': 'succeeded',
      'uk-b': 'skipped',
      'uk-c': 'succeeded',
    });
    expect((await engine.getStack('uk')).state).toBe('unknown');
    expect((await refusal(engine.startStackRun('uk', 'deploy', {}, OPERATOR))).code).toBe(
      'STACK_UNKNOWN_STATE',
    );
    expect((await refusal(engine.startStackRun('uk', 'deploy', { force: true }, OPERATOR))).code).toBe(
      'FORBIDDEN',
    );
    const forced = await engine.startStackRun('uk', 'deploy', { force: true }, ADMIN);
    expect(steps(forced)).toEqual({
      'uk-a': 'waiting',
      'uk-x': 'not_needed',
      'uk-b': 'waiting',
      'uk-c': 'not_needed',
    });
    const a2 = await until(forced.id, { 'uk-a': 'launched' }, 'a relaunched');
    expect((await engine.getAttempt(a2.steps.find((s) => s.deployment === 'uk-a')!.attempt_id!)).force).toBe(
      true,
    );
    await tell(id['uk-a'], 0);
    await until(forced.id, { 'uk-b': 'launched' }, 'b launched');
    const b = (await engine.getRun(forced.id)).steps.find((s) => s.deployment === 'uk-b')!.attempt_id!;
    expect((await engine.getAttempt(b)).force).toBe(false);
    await tell(id['uk-b'], 0);
    expect((await ended(forced.id)).state).toBe('succeeded');
    await expectHistory('uk', forced.id);
  });

  it('a deploy of some units takes what they need; bad unit keys are refused, nothing written', async () => {
    await engine.createStack(failSpec('some', 'stop'), OPERATOR);
    const before = (await engine.listRuns('some', {})).items.length;
    const bad = await refusal(engine.startStackRun('some', 'deploy', { units: ['b', 'zz'] }, OPERATOR));
    expect(bad.code).toBe('VALIDATION');
    expect(bad.errors).toEqual([{ field: 'units[1]', reason: 'no unit has the key "zz"' }]);
    expect((await refusal(engine.startStackRun('some', 'deploy', { units: 'b' }, OPERATOR))).code).toBe(
      'VALIDATION',
    );
    expect((await engine.listRuns('some', {})).items.length).toBe(before);
    expect((await engine.getStack('some')).active_run).toBeNull();
    const run = await engine.startStackRun('some', 'deploy', { units: ['b'] }, OPERATOR);
    expect(steps(run)).toEqual({
      'some-a': 'waiting',
      'some-x': 'not_needed',
      'some-b': 'waiting',
      'some-c': 'not_needed',
    });
    const id = await ids('some');
    await until(run.id, { 'some-a': 'launched' }, 'a launched');
    await tell(id['some-a'], 0);
    await until(run.id, { 'some-b': 'launched' }, 'b launched');
    await tell(id['some-b'], 0);
    expect((await ended(run.id)).state).toBe('succeeded');
  });
});
