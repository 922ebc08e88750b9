// A child in the plan's own process group that ignores SIGTERM (issue 17 point 1): the plan exits on
// SIGTERM, its supervisor records the exit at once, and the child lives on. A cancelled or timed-out
// attempt must not be reported ended while any process of its group is alive: the rest of the group
// gets SIGKILL after the cancel grace, also though its leader is gone, and only then the end.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Attempt } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { DIALECTS, fixturePlans, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

/** The timed-out tests' plan timeout (see run()). */
const TIMEOUT = '1s';
const PLAN = ['/bin/sh', '-c', "(trap '' TERM; exec sleep 306) & sleep 100"];

/** Live `sleep 306` processes in the session the plan led (its pid). */
function leftovers(session: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8') !== 'sleep\x00306\x00') continue;
      const f = fs.readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ');
      if (f[0] !== 'Z' && Number(f[3]) === session) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

let engine: Lifeline | null = null;
const sessions: number[] = [];
afterEach(async () => {
  await engine?.close();
  engine = null;
  for (const s of sessions.splice(0)) for (const pid of leftovers(s)) process.kill(pid, 'SIGKILL');
});

describe.each(DIALECTS)('on %s', (dialect) => {
  describe.each(['perl', 'sh'] as const)('supervisor: %s', (supervisor) => {
    /**
     * `timeout` ends the attempt unless `stop` does first: long enough to see the plan and its child run
     * on a loaded machine (they are seen some 10–60 ms after the start; TIMEOUT is 20 times that). The
     * grace is short: what is proven is that the end waits for the SIGKILL after it, however long it is.
     */
    async function run(
      name: string,
      timeout: string,
      stop: (a: Attempt, runDir: string) => Promise<void>,
    ): Promise<Attempt> {
      const dir = tempDir();
      const plans = {
        ...fixturePlans(),
        grouped: { deploy: PLAN, teardown: ['/bin/true'], timeout, cancel_grace: '500ms' },
      };
      engine = await startEngine(dir, { plans, supervisor }, dialect);
      await engine.createDeployment({ name, plan: 'grouped' }, OPERATOR);
      const att = await engine.startDeploy(name, {}, OPERATOR);
      await waitFor(async () => (await engine!.getAttempt(att.id)).state === 'running', 'running');
      const plan = readProcess(path.join(dir, 'attempts', att.id))!;
      sessions.push(plan.pid);
      await waitFor(() => leftovers(plan.pid).length === 1, 'the TERM-proof child');
      await stop(att, path.join(dir, 'attempts', att.id));
      const ended = await waitFor(
        async () => {
          const a = await engine!.getAttempt(att.id);
          return a.state !== 'running' && a.state !== 'queued' ? a : null;
        },
        'the end',
        20_000,
      );
      // Looked at as soon as the end is seen: nothing of the group may be left by then.
      expect(leftovers(plan.pid)).toEqual([]);
      return ended;
    }

    it('a timed-out attempt ends only once its group is gone', async () => {
      const a = await run('t', TIMEOUT, async () => undefined);
      expect({ state: a.state, reason: a.reason }).toEqual({ state: 'failed', reason: 'timeout' });
    }, 30_000);

    it('a cancelled attempt ends only once its group is gone', async () => {
      const a = await run('c', '60s', async () => {
        await engine!.cancel('c', OPERATOR);
      });
      expect(a.state).toBe('cancelled');
    }, 30_000);

    it('a timed-out plan whose supervisor died is recorded lost only once its group is gone', async () => {
      // No exit record will come (the supervisor is dead): the end is `unknown`, and still stopped.
      const a = await run('s', TIMEOUT, async (_, runDir) => {
        process.kill(readSupervisor(runDir)!.pid, 'SIGKILL');
      });
      expect({ state: a.state, reason: a.reason }).toEqual({ state: 'unknown', reason: 'exit_unobserved' });
    }, 30_000);
  });
});
