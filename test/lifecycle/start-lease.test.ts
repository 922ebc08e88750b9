// A restarted instance must start however long its first reconcile takes (issue 17, found by the chaos
// run on a starved machine): heartbeats begin before that pass. With heartbeats only after it, a first
// pass longer than the lease let the lease lapse with nothing to renew it, the watcher stopped acting,
// the pass waited for it forever and start() never returned. Here the first pass is held (the event loop
// blocked, as on a starved machine) past the lease while it has a stopped attempt to finish: the last
// life cancelled it, its plan exited on SIGTERM, a child of its group ignores it, and the server died
// during the cancel grace. start() must return, the instance hold a lease, and the child be stopped
// before the end is recorded.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { openLifeline } from '../../src/lifecycle/engine.ts';
import { groupMembers } from '../../src/runner/identity.ts';
import { readExit, readProcess } from '../../src/runner/rundir.ts';
import { holdEventLoop } from '../helpers/hold.ts';
import {
  dialectConfig,
  DIALECTS,
  fixturePlans,
  OPERATOR,
  quietLogger,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';

const PLAN = ['/bin/sh', '-c', "(trap '' TERM; exec sleep 308) & sleep 100"];

const engines: Lifeline[] = [];
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
  it('start() returns and holds a lease when its first pass outlasts the lease', async () => {
    const dir = tempDir();
    const extra = {
      plans: {
        ...fixturePlans(),
        // The grace outlasts the first server's close (some 20 ms after the plan's exit is seen) and,
        // counted again by the second from its own SIGTERM, is waited out after its start.
        grouped: { deploy: PLAN, teardown: ['/bin/true'], timeout: '60s', cancel_grace: '1s' },
      },
      lease_ttl: '1s',
      reap_interval: '1s',
    };
    let hold = false;
    const open = async () => {
      const e = await openLifeline({
        config: await dialectConfig(dialect, dir, extra),
        logger: quietLogger(),
        onReconcileLook: () => {
          if (!hold) return;
          hold = false;
          holdEventLoop(1500); // a starved loop past lease_ttl: no timer, no heartbeat runs meanwhile
        },
      });
      engines.push(e);
      return e;
    };
    const first = await open();
    await first.start();
    await first.createDeployment({ name: 'g', plan: 'grouped' }, OPERATOR);
    const att = await first.startDeploy('g', {}, OPERATOR);
    await waitFor(async () => (await first.getAttempt(att.id)).state === 'running', 'running');
    const run = path.join(dir, 'attempts', att.id);
    const plan = readProcess(run)!;
    groups.push(plan.pid);
    await first.cancel('g', OPERATOR);
    // The plan exited on SIGTERM, its child lives on: the end waits for the grace. The server dies now.
    await waitFor(
      () => readExit(run) !== null && groupMembers(plan).length > 0,
      `the exit and the child ${JSON.stringify({ exit: readExit(run), members: groupMembers(plan) })}`,
    );
    await first.close();
    engines.splice(0);
    expect((await (await open()).getAttempt(att.id)).state).toBe('running');
    const second = engines[0];
    hold = true;
    let started = false;
    const starting = second.start().then(() => (started = true));
    await waitFor(() => started, 'start() to return', 30_000);
    await starting;
    const ended = await waitFor(async () => {
      const a = await second.getAttempt(att.id);
      return a.state === 'running' ? null : a;
    }, 'the end');
    expect(ended.state).toBe('cancelled');
    expect(groupMembers(plan)).toEqual([]);
    // It holds a lease (re-registered after the lapse the held pass caused) and owns the attempt under it.
    const me = (await second.listInstances()).find((i) => i.id === second.instanceId)!;
    expect(me.alive).toBe(true);
    expect(ended.owner).toBe(second.instanceId);
  }, 60_000);
});
