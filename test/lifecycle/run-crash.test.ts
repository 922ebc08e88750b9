// Stack runs under faults (SPEC §12.4 "exactly once, whatever fails"; issue 19 point 5). The engine runs
// in a child process that starts a run and is SIGKILLed at a point of it: inside a unit's launch
// transaction (before it commits), after the launch committed but before the plan was started, after
// the plan was started, inside the transaction that ends the run, while units run, and while a teardown
// walks back. An engine on the same data dir and database then recovers and finishes the run. Every
// unit is launched at most once by the run (one accepted attempt per launched step, none twice), none
// that should be is left out, and the run ends as its units say. Two engines on one Postgres advancing
// the same run (every pass of both, at once) launch each unit once and end the run once.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/domain/stack-run.ts';
import type { LifelineEvent } from '../../src/domain/types.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import type { RunCrashPoint } from '../../src/lifecycle/runs/crash-points.ts';
import { crashChildCommand, type ChildCommand } from '../helpers/crash.ts';
import { FULL } from '../helpers/full.ts';
import {
  DIALECTS,
  dbUrlFor,
  keepDurableCommits,
  quietLogger,
  tempDir,
  waitFor,
  type TestDialect,
} from '../helpers/engine.ts';
import { RUN_CRASH_CHILD, RUN_CRASH_STACK, runCrashConfig } from '../helpers/run-crash.ts';

keepDurableCommits();

const REPO = path.resolve(import.meta.dirname, '../..');
let cmd: ChildCommand;
beforeAll(async () => {
  cmd = await crashChildCommand(RUN_CRASH_CHILD);
});
afterAll(() => cmd?.dispose());

interface Child {
  proc: ChildProcess;
  started: Promise<string | null>;
  exited: Promise<NodeJS.Signals | number | null>;
  stderr: () => string;
}

function child(dir: string, db: string, action: string, crash?: { at: RunCrashPoint; nth: number }): Child {
  const proc = spawn(process.execPath, [...cmd.args, dir, db, action], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: 'test',
      ...(crash ? { LIFELINE_TEST_CRASH_AT: crash.at, LIFELINE_TEST_CRASH_NTH: String(crash.nth) } : {}),
    },
  });
  let out = '';
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  proc.stdin!.on('error', () => undefined);
  const exited = new Promise<NodeJS.Signals | number | null>((res) =>
    proc.once('exit', (code, sig) => res(sig ?? code)),
  );
  const started = new Promise<string | null>((res) => {
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const m = /started (run_\S+)/.exec(out);
      if (m) res(m[1]);
    });
    void exited.then(() => res(/started (run_\S+)/.exec(out)?.[1] ?? null));
  });
  return { proc, started, exited, stderr: () => err };
}

/**
 * An engine on the killed one's data dir and database recovers (start()), then advances the run until
 * it ends. The run is the one the child said it started, else the one run of the stack (the child died
 * before it could say).
 */
async function recoverAndFinish(
  dir: string,
  db: string,
  said: string | null,
): Promise<{ engine: Lifeline; run: Run }> {
  const engine = await openLifeline({ config: runCrashConfig(dir, db), logger: quietLogger() });
  await engine.start();
  const runId = said ?? (await engine.listRuns(RUN_CRASH_STACK.name, {})).items[0].id;
  const run = await waitFor(
    async () => {
      await engine.runs.pass();
      const r = await engine.getRun(runId);
      return r.state !== 'queued' && r.state !== 'running' ? r : null;
    },
    `run ${runId} to end after recovery`,
    60_000,
  );
  return { engine, run };
}

async function stackEvents(engine: Lifeline): Promise<LifelineEvent[]> {
  const out: LifelineEvent[] = [];
  let after = 0;
  for (;;) {
    const page = await engine.listEvents({ stack: RUN_CRASH_STACK.name, after, limit: 1000 });
    out.push(...page.items);
    if (page.items.length < 1000) return out;
    after = page.next_after;
  }
}

/** Each step launched names the one attempt its run accepted on the unit; nothing was accepted twice. */
async function expectOnce(engine: Lifeline, run: Run): Promise<void> {
  const events = await stackEvents(engine);
  for (const s of run.steps) {
    const accepted = events.filter(
      (e) =>
        e.type === 'state_transition' &&
        e.data.entity === 'attempt' &&
        e.data.trigger === 'accepted' &&
        e.deployment_id === s.deployment_id &&
        events.some(
          (d) =>
            d.attempt_id === e.attempt_id &&
            d.data.entity === 'deployment' &&
            d.data.reason === `stack run ${run.id}`,
        ),
    );
    expect(
      accepted.map((e) => e.attempt_id),
      `${s.deployment}: launched once, by its step`,
    ).toEqual(s.attempt_id ? [s.attempt_id] : []);
  }
  const ends = events.filter(
    (e) => e.data.entity === 'run' && e.data.id === run.id && e.data.trigger === 'ended',
  );
  expect(ends.length, 'the run ended once').toBe(1);
  expect((await engine.getStack(RUN_CRASH_STACK.name)).active_run).toBeNull();
}

const ALL_SUCCEEDED = ['succeeded', 'succeeded', 'succeeded', 'succeeded'];

describe.each(DIALECTS)('stack runs killed at each point (%s)', (dialect: TestDialect) => {
  async function crashed(
    action: string,
    at: RunCrashPoint,
    nth: number,
    dir = tempDir('lifeline-run-crash-'),
  ) {
    const db = await dbUrlFor(dialect, dir);
    const c = child(dir, db, action, { at, nth });
    const runId = await c.started;
    const sig = await c.exited;
    expect(sig, `the child died at ${at} #${nth}: ${c.stderr()}`).toBe('SIGKILL');
    return { dir, db, runId };
  }

  // Every crash point runs on both stores; a second `nth` of a point (another unit's launch at the same
  // point of its pass) only in the full mode (LIFELINE_TEST_FULL=1).
  it.each([
    ['run_launch_before_commit', 1],
    ...(FULL ? [['run_launch_before_commit', 2]] : []),
    ['run_end_before_commit', 1],
    ['run_end_after_commit', 1],
  ] as [RunCrashPoint, number][])(
    'deploy killed at %s #%i: every unit launched once, the run succeeds',
    async (at, nth) => {
      const { dir, db, runId: said } = await crashed('deploy', at, nth);
      const { engine, run } = await recoverAndFinish(dir, db, said);
      try {
        expect(run.state).toBe('succeeded');
        expect(run.steps.map((s) => s.step)).toEqual(ALL_SUCCEEDED);
        await expectOnce(engine, run);
      } finally {
        await engine.close();
      }
    },
  );

  it.each([['run_launch_after_start', 1], ...(FULL ? [['run_launch_after_start', 3]] : [])] as [
    RunCrashPoint,
    number,
  ][])(
    'deploy killed at %s #%i: launched once; a plan the runner never got is start_interrupted',
    async (at, nth) => {
      // Killed just after the runner was asked: whether the ask reached it is a race. Either the plan
      // runs and is adopted (the unit succeeds) or it never started (unknown, start_interrupted); never twice.
      const { dir, db, runId: said } = await crashed('deploy', at, nth);
      const { engine, run } = await recoverAndFinish(dir, db, said);
      try {
        for (const s of run.steps.filter((x) => x.step === 'unknown')) {
          const att = await engine.getAttempt(s.attempt_id!);
          expect({ state: att.state, reason: att.reason }).toEqual({
            state: 'unknown',
            reason: 'start_interrupted',
          });
        }
        const unknown = run.steps.filter((x) => x.step === 'unknown').length;
        expect(run.state).toBe(unknown > 0 ? 'unknown' : 'succeeded');
        if (unknown === 0) expect(run.steps.map((s) => s.step)).toEqual(ALL_SUCCEEDED);
        await expectOnce(engine, run);
      } finally {
        await engine.close();
      }
    },
  );

  it('deploy killed after a launch committed, before its plan started: that unit is launched once and its outcome is unknown', async () => {
    // The second launch is the first vm's: accepted, never started (the engine died before the runner
    // was asked). Its attempt is start_interrupted (unknown) and blocks fin; the run is never repeated.
    const { dir, db, runId: said } = await crashed('deploy', 'run_launch_after_commit', 2);
    const { engine, run } = await recoverAndFinish(dir, db, said);
    try {
      expect(run.state).toBe('unknown');
      const byName = Object.fromEntries(run.steps.map((s) => [s.deployment, s]));
      expect(byName['rc-net'].step).toBe('succeeded');
      expect(byName['rc-fin'].step).toBe('skipped');
      const lost = [byName['rc-vm-1'], byName['rc-vm-2']].filter((s) => s.step === 'unknown');
      expect(lost.length).toBe(1);
      const att = await engine.getAttempt(lost[0].attempt_id!);
      expect({ state: att.state, reason: att.reason }).toEqual({
        state: 'unknown',
        reason: 'start_interrupted',
      });
      await expectOnce(engine, run);
    } finally {
      await engine.close();
    }
  });

  it('killed while units run, then while the teardown walks back: each unit deployed once and torn down once', async () => {
    const dir = tempDir('lifeline-run-crash-');
    const db = await dbUrlFor(dialect, dir);
    const c = child(dir, db, 'deploy');
    const runId = (await c.started)!;
    expect(runId).toMatch(/^run_/);
    // Killed once the vms run (net done, fin waiting), and only when every launched unit's plan is
    // recorded as started: a launch committed but not yet handed to the runner when the server dies can
    // never start, and its unit rightly ends unknown (the test above), not what this one is about.
    const attempts = path.join(dir, 'attempts');
    await waitFor(
      () => {
        if (!fs.existsSync(attempts)) return false;
        const launched = fs.readdirSync(attempts);
        const started = launched.filter((a) => fs.existsSync(path.join(attempts, a, 'process')));
        return started.length >= 2 && started.length === launched.length;
      },
      'the vms to run',
      30_000,
    );
    c.proc.kill('SIGKILL');
    await c.exited;
    let { engine, run } = await recoverAndFinish(dir, db, runId);
    try {
      expect(run.state).toBe('succeeded');
      expect(run.steps.map((s) => s.step)).toEqual(ALL_SUCCEEDED);
      await expectOnce(engine, run);
    } finally {
      await engine.close();
    }
    // The teardown: killed at its second launch (a vm, after fin is gone).
    const t = await crashed('teardown', 'run_launch_before_commit', 2, dir);
    ({ engine, run } = await recoverAndFinish(dir, db, t.runId));
    try {
      expect(run.kind).toBe('teardown');
      expect(run.state).toBe('succeeded');
      expect(run.steps.map((s) => s.step)).toEqual(ALL_SUCCEEDED);
      await expectOnce(engine, run);
      expect((await engine.getStack('rc')).state).toBe('torn_down');
    } finally {
      await engine.close();
    }
  });
});

describe('two engines on one Postgres advance a run once', () => {
  it('every unit launched once, the run started and ended once', async () => {
    const dirA = tempDir('lifeline-run-two-a-');
    const dirB = tempDir('lifeline-run-two-b-');
    const db = await dbUrlFor('postgres', dirA);
    const a = await openLifeline({ config: runCrashConfig(dirA, db), logger: quietLogger() });
    const b = await openLifeline({ config: runCrashConfig(dirB, db), logger: quietLogger() });
    await a.start();
    await b.start();
    try {
      const stack = {
        name: 'rc',
        on_failure: 'continue',
        units: [
          { key: 'net', plan: 'nap' },
          { key: 'vm', plan: 'nap', count: 6, after: ['net'] },
          { key: 'fin', plan: 'nap', after: ['vm'] },
        ],
      };
      await a.createStack(stack, { name: 'ci', role: 'operator' });
      const started = await a.startStackRun('rc', 'deploy', {}, { name: 'ci', role: 'operator' });
      const run = await waitFor(
        async () => {
          await Promise.all([a.runs.pass(), b.runs.pass(), a.runs.pass(), b.runs.pass()]);
          const r = await b.getRun(started.id);
          return r.state !== 'queued' && r.state !== 'running' ? r : null;
        },
        'the run to end',
        60_000,
      );
      expect(run.state, JSON.stringify(run.steps)).toBe('succeeded');
      expect(run.steps.every((s) => s.step === 'succeeded')).toBe(true);
      await expectOnce(a, run);
      const starts = (await stackEvents(a)).filter(
        (e) => e.data.entity === 'run' && e.data.trigger === 'started',
      );
      expect(starts.length).toBe(1);
    } finally {
      await b.close();
      await a.close();
    }
  });
});
