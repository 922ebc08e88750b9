// A cancel of a queued attempt whose owner is gone, while the owner's launch is still with the runner
// (found by the chaos run on Postgres, issue 17: instance kills and a stubborn plan). The runner outlives
// its server, so a dead owner says nothing about whether the plan starts. It used to be cancelled at
// once ("before start") and the plan started a moment later, unwatched, its TERM-proof child living on
// after the recorded end. The cancel must be a request until the start deadline has passed; the instance
// that finds the plan's run dir takes the attempt over and stops all of it before `cancelled` is recorded.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import type { Launcher, SupervisorHandle } from '../../src/runner/launcher.ts';
import { SUPERVISOR_SCRIPT, type SpawnSupervisorOptions } from '../../src/runner/spawn.ts';
import { groupMembers } from '../../src/runner/identity.ts';
import { readProcess } from '../../src/runner/rundir.ts';
import {
  dbUrlFor,
  DIALECTS,
  fixturePlans,
  OPERATOR,
  quietLogger,
  tempDir,
  testConfig,
  waitFor,
} from '../helpers/engine.ts';

const PLAN = ['/bin/sh', '-c', "(trap '' TERM; exec sleep 307) & sleep 100"];
/** supervisor.sh, forked at once but starting only once `gate` exists (a request in a runner's queue). */
class GatedLauncher implements Launcher {
  constructor(private readonly gate: string) {}
  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    const dir = path.resolve(opts.dir);
    const wait = 'while [ ! -e "$0" ]; do /bin/sleep 0.05; done; exec /bin/sh "$@"';
    const child = spawn('/bin/sh', ['-c', wait, this.gate, SUPERVISOR_SCRIPT, dir, ...opts.argv], {
      detached: true,
      stdio: 'ignore',
      env: opts.env,
      cwd: opts.cwd,
    });
    child.unref();
    if (child.pid) groups.push(child.pid);
    return child;
  }
  lastProgressAt(): number {
    return 0;
  }
  close(): void {}
}

const engines: Lifeline[] = [];
/** Process groups to kill after each test: the gated launches and the plans. */
const groups: number[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.close();
  for (const pid of groups.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

describe.each(DIALECTS)('on %s', (dialect) => {
  it('a dead owner’s queued attempt is not cancelled at once: the plan its runner starts is stopped first', async () => {
    const dirA = tempDir();
    const dirB = tempDir();
    const url = await dbUrlFor(dialect, dirA);
    const extra = {
      plans: {
        ...fixturePlans(),
        grouped: { deploy: PLAN, teardown: ['/bin/true'], timeout: '60s', cancel_grace: '1s' },
      },
      lease_ttl: '1s',
      reap_interval: '200ms',
      start_deadline: '20s',
    };
    const open = async (dir: string, wrap?: () => Launcher) => {
      const e = await openLifeline({
        config: testConfig(dir, extra, url),
        logger: quietLogger(),
        ...(wrap ? { wrapLauncher: wrap } : {}),
      });
      engines.push(e);
      await e.start();
      return e;
    };
    // Instance A accepts the deploy and hands it to its (slow) launcher, then is gone.
    const gate = path.join(tempDir(), 'go');
    const a = await open(dirA, () => new GatedLauncher(gate));
    await a.createDeployment({ name: 'orphan', plan: 'grouped' }, OPERATOR);
    const att = await a.startDeploy('orphan', {}, OPERATOR);
    await a.close();
    engines.splice(engines.indexOf(a), 1);
    // Instance B, on the same database, once A's lease has lapsed and before the plan has started.
    const b = await open(dirB);
    await waitFor(async () => {
      const rows = await b.listInstances();
      const gone = rows.find((i) => i.id === a.instanceId);
      return gone !== undefined && !gone.alive;
    }, 'A’s lease to lapse');
    const run = path.join(dirA, 'attempts', att.id);
    const asked = await b.cancel('orphan', OPERATOR);
    expect(asked.state).toBe('queued');
    expect(asked.cancel_requested_at).not.toBeNull();
    // The plan starts (its runner had it) and B stops it: all of it, before the end is recorded.
    fs.writeFileSync(gate, '');
    const plan = await waitFor(() => readProcess(run), 'the plan to start', 20_000);
    groups.push(plan.pid);
    const ended = await waitFor(
      async () => {
        const x = await b.getAttempt(att.id);
        return x.state !== 'queued' && x.state !== 'running' ? x : null;
      },
      'the end',
      20_000,
    );
    expect(groupMembers(plan)).toEqual([]);
    expect(ended).toMatchObject({ state: 'cancelled', reason: 'cancelled', owner: b.instanceId });
    expect((await b.getDeployment('orphan')).state).toBe('failed');
  }, 60_000);
});
