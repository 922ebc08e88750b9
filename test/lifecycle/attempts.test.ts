// Real plans, real processes: each ends in the right state, rc and reason, with its output once and in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attempt } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import path from 'node:path';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { ADMIN, DIALECTS, FIXTURES, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';

/** Rounds of 20 immediate exits at once: 40 by default, the 200 soak under LIFELINE_TEST_FULL=1. */
const FAST_ROUNDS = scaled(2, 10);

let engine: Lifeline;
let dataDir: string;
describe.each(DIALECTS)('on %s', (dialect) => {
  beforeAll(async () => {
    dataDir = tempDir();
    // No test here is about a start that never comes. With the tests' usual 2 s start deadline a slow
    // start is lost until its exit record corrects it: in the full mode, beside the other soaks on two
    // cores, a forced teardown went tearing_down → unknown → torn_down (CI, 7 Dec 20:55; its test took
    // 5.4 s instead of 0.3), most likely its plan starting later than that.
    engine = await startEngine(dataDir, { start_deadline: '60s' }, dialect);
  });
  afterAll(async () => {
    await engine.close();
  });

  let n = 0;
  async function deploy(
    plan: string,
    params?: Record<string, unknown>,
  ): Promise<{ name: string; attempt: Attempt }> {
    const name = `${plan}-${++n}`;
    await engine.createDeployment({ name, plan, params }, OPERATOR);
    const attempt = await engine.startDeploy(name, {}, OPERATOR);
    return { name, attempt };
  }

  async function ended(id: string): Promise<Attempt> {
    return waitFor(async () => {
      const a = await engine.getAttempt(id);
      return a.state !== 'queued' && a.state !== 'running' ? a : null;
    }, `attempt ${id} to end`);
  }

  async function running(id: string): Promise<Attempt> {
    let last: Attempt | null = null;
    return waitFor(async () => {
      last = await engine.getAttempt(id);
      if (!['queued', 'running'].includes(last.state))
        throw new Error(`attempt ended early: ${JSON.stringify(last)}`);
      return last.state === 'running' ? last : null;
    }, `attempt ${id} to run`);
  }

  async function eventsOf(attemptId: string) {
    const out = [];
    let after = 0;
    for (;;) {
      const page = await engine.listEvents({ after, limit: 1000 });
      if (page.items.length === 0) break;
      out.push(...page.items.filter((e) => e.attempt_id === attemptId));
      after = page.next_after;
    }
    return out;
  }

  describe('attempts with real processes', () => {
    it('exit 0: succeeded, rc 0, deployment ready, one attempt_start and one attempt_end', async () => {
      const { name, attempt } = await deploy('ok');
      const a = await ended(attempt.id);
      expect(a).toMatchObject({
        state: 'succeeded',
        rc: 0,
        reason: null,
        recovered: false,
        requested_by: 'ci',
      });
      expect((await engine.getDeployment(name)).state).toBe('ready');
      const ev = await eventsOf(attempt.id);
      expect(ev.filter((e) => e.type === 'attempt_start')).toHaveLength(1);
      const end = ev.filter((e) => e.type === 'attempt_end');
      expect(end).toHaveLength(1);
      expect(end[0].data).toEqual({
        number: 1,
        kind: 'deploy',
        state: 'succeeded',
        reason: null,
        rc: 0,
        recovered: false,
      });
      // attempt_end comes after every log line
      const lastLog = Math.max(...ev.filter((e) => e.type === 'log_line').map((e) => e.seq));
      expect(end[0].seq).toBeGreaterThan(lastLog);
    });

    it('exit 2: failed with exit_nonzero, deployment failed', async () => {
      const { name, attempt } = await deploy('fail');
      const a = await ended(attempt.id);
      expect(a).toMatchObject({ state: 'failed', rc: 2, reason: 'exit_nonzero' });
      expect((await engine.getDeployment(name)).state).toBe('failed');
      const t = await engine.listTransitions(name);
      expect(t.items.map((x) => [x.from, x.to])).toEqual([
        [null, 'pending'],
        ['pending', 'deploying'],
        ['deploying', 'failed'],
      ]);
    });

    it('a sleeper cancelled while running: cancelled with its rc, deployment failed', async () => {
      const { name, attempt } = await deploy('sleep');
      await running(attempt.id);
      const c = await engine.cancel(name, OPERATOR);
      expect(c.cancel_requested_at).not.toBeNull();
      const a = await ended(attempt.id);
      expect(a).toMatchObject({ state: 'cancelled', reason: 'cancelled', rc: 143 });
      expect((await engine.getDeployment(name)).state).toBe('failed');
    });

    it('a plan that ignores SIGTERM is killed after cancel_grace', async () => {
      const { name, attempt } = await deploy('stubborn');
      await running(attempt.id);
      await waitFor(
        async () => (await engine.readAttemptLog(attempt.id)).text.includes('stubborn started'),
        'start line',
      );
      await engine.cancel(name, OPERATOR);
      const a = await ended(attempt.id);
      expect(a).toMatchObject({ state: 'cancelled', reason: 'cancelled', rc: 137 });
      expect((await engine.readAttemptLog(attempt.id)).text).toContain('got TERM, ignoring');
    });

    it('timeout: TERM then KILL, failed with reason timeout', async () => {
      const { attempt } = await deploy('slowtimeout');
      const a = await ended(attempt.id);
      expect(a).toMatchObject({ state: 'failed', reason: 'timeout', rc: 143 });
    });

    it('10,000 lines: every line once and in order', async () => {
      const { attempt } = await deploy('lines');
      await ended(attempt.id);
      const lines = (await eventsOf(attempt.id)).filter((e) => e.type === 'log_line').map((e) => e.data.text);
      expect(lines).toHaveLength(10_000);
      expect(lines).toEqual(Array.from({ length: 10_000 }, (_, i) => `line ${i + 1}`));
      const log = await engine.readAttemptLog(attempt.id);
      expect(log.text.split('\n').filter(Boolean)).toHaveLength(10_000);
      const tail = await engine.readAttemptLog(attempt.id, log.next_offset - 'line 10000\n'.length);
      expect(tail.text).toBe('line 10000\n');
    });

    it('runner events become runner_event events; a non-JSON line is kept, marked invalid', async () => {
      const { attempt } = await deploy('events');
      await ended(attempt.id);
      const rev = (await eventsOf(attempt.id)).filter((e) => e.type === 'runner_event').map((e) => e.data);
      expect(rev).toEqual([
        { phase: 'plan' },
        { phase: 'apply', tasks: 3 },
        { invalid: true, text: 'not json' },
      ]);
    });

    it('a plan whose program is missing fails with runner_error without running', async () => {
      const { name, attempt } = await deploy('missing');
      const a = await ended(attempt.id);
      const program = path.join(FIXTURES, 'does-not-exist.sh');
      expect(a).toMatchObject({
        state: 'failed',
        reason: 'runner_error',
        rc: null,
        detail: `program not found or not executable: ${program}`,
      });
      expect((await engine.getDeployment(name)).state).toBe('failed');
      // The reason is in the attempt's log too (what `lifeline logs` prints), told once, before its end.
      expect((await engine.readAttemptLog(attempt.id)).text).toBe(
        `lifeline: program not found or not executable: ${program}\n`,
      );
      const ev = await eventsOf(attempt.id);
      // The told line, then the attempt's and the deployment's transitions, then attempt_end.
      expect(ev.map((e) => e.type).slice(-4)).toEqual([
        'log_line',
        'state_transition',
        'state_transition',
        'attempt_end',
      ]);
      expect(ev.at(-4)!.data).toEqual({
        stream: 'stderr',
        text: `lifeline: program not found or not executable: ${program}`,
      });
    });

    it('an attempt that ran has no detail', async () => {
      const { attempt } = await deploy('fail');
      expect(await ended(attempt.id)).toMatchObject({
        state: 'failed',
        reason: 'exit_nonzero',
        detail: null,
      });
    });

    it('params reach the process as env and file; writeOnly values are masked in events, logs and responses', async () => {
      const { name, attempt } = await deploy('secret', { password: 's3cr3t-value', replicas: 2 });
      expect(await ended(attempt.id)).toMatchObject({ state: 'succeeded', rc: 0 });
      const log = await engine.readAttemptLog(attempt.id);
      expect(log.text).toContain('"replicas":2');
      expect(log.text).not.toContain('s3cr3t-value');
      expect(log.text).toContain('***');
      expect((await engine.getDeployment(name)).params).toEqual({ password: '***', replicas: 2 });
      expect((await engine.getAttempt(attempt.id)).params).toEqual({ password: '***', replicas: 2 });
      const all = await engine.listEvents({ limit: 1000, deployment: name });
      expect(JSON.stringify(all.items)).not.toContain('s3cr3t-value');
    });

    it('refuses params that do not match the plan schema, writing nothing', async () => {
      const before = await engine.listEvents({ after: 0, limit: 1000 });
      await expect(
        engine.createDeployment({ name: 'bad-params', plan: 'secret', params: { replicas: 0 } }, OPERATOR),
      ).rejects.toMatchObject({ code: 'VALIDATION' });
      const after = await engine.listEvents({ after: 0, limit: 1000 });
      expect(after.items.length).toBe(before.items.length);
    });

    it('a process killed with its supervisor becomes unknown/exit_unobserved; unknown guards teardown and deploy', async () => {
      const { name, attempt } = await deploy('sleep');
      await running(attempt.id);
      const runDir = path.join(dataDir, 'attempts', attempt.id);
      process.kill(-readSupervisor(runDir)!.pid, 'SIGKILL');
      process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
      const a = await ended(attempt.id);
      expect(a).toMatchObject({ state: 'unknown', reason: 'exit_unobserved', rc: null });
      expect((await engine.getDeployment(name)).state).toBe('unknown');
      await expect(engine.teardown(name, { confirm: name }, OPERATOR)).rejects.toMatchObject({
        code: 'DEPLOYMENT_UNKNOWN_STATE',
      });
      await expect(engine.startDeploy(name, {}, OPERATOR)).rejects.toMatchObject({
        code: 'DEPLOYMENT_UNKNOWN_STATE',
      });
      await expect(engine.teardown(name, { confirm: name, force: true }, OPERATOR)).rejects.toMatchObject({
        code: 'FORBIDDEN',
      });
      const td = await engine.teardown(name, { confirm: name, force: true }, ADMIN);
      expect(td).toMatchObject({ kind: 'teardown', force: true, requested_by: 'alice' });
      await waitFor(async () => (await engine.getDeployment(name)).state === 'torn_down', 'torn_down');
      const t = await engine.listTransitions(name);
      expect(t.items.map((x) => x.to)).toEqual([
        'pending',
        'deploying',
        'unknown',
        'tearing_down',
        'torn_down',
      ]);
      expect(t.items[3]).toMatchObject({ actor: 'alice', reason: 'forced' });
    });
  });

  describe('cancel proven by the process being gone', () => {
    it('a cancelled attempt whose process vanishes with its supervisor (no exit record) is cancelled, rc null', async () => {
      const { name, attempt } = await deploy('stubborn');
      await running(attempt.id);
      await engine.cancel(name, OPERATOR);
      const runDir = path.join(dataDir, 'attempts', attempt.id);
      process.kill(-readSupervisor(runDir)!.pid, 'SIGKILL'); // before the grace ends: no one records an exit
      process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
      const a = await ended(attempt.id);
      expect(a).toMatchObject({ state: 'cancelled', reason: 'cancelled', rc: null });
      expect((await engine.getDeployment(name)).state).toBe('failed');
    });
  });

  describe('fast plans', () => {
    // A pass that saw no supervisor file, then found one a moment later, once took the just-started
    // supervisor for a dead one and lost the outcome (about 1 in 150 attempts, so this catches it only
    // sometimes; the fix is that lose() decides on one fresh look, liveness before the exit record).
    it(`never lose their outcome: ${FAST_ROUNDS * 20} immediate exits all end succeeded`, async () => {
      const names = Array.from({ length: 20 }, (_, i) => `fast-${i}`);
      for (const name of names) await engine.createDeployment({ name, plan: 'ok' }, OPERATOR);
      for (let round = 0; round < FAST_ROUNDS; round++) {
        const attempts = await Promise.all(names.map((name) => engine.startDeploy(name, {}, OPERATOR)));
        const ends = await Promise.all(attempts.map((a) => ended(a.id)));
        expect(ends.filter((a) => a.state !== 'succeeded')).toEqual([]);
      }
    }, 120_000);
  });
});
