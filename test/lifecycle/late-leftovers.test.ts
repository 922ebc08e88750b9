// Stopped means stopped on the late path too (issue 17): an `unknown` attempt whose process lives on
// here (its owner marked lost elsewhere, e.g. `runner_lost`, then came back) is supervised again, and a
// cancel through it stops the plan. Its exit record then corrects it (`late_result`), but only once
// nothing of its group is left: a child that ignored SIGTERM is SIGKILLed after the grace first. It used
// to be settled from the exit record at once (by the watcher or by recovery's pass) with the child alive.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { groupMembers } from '../../src/runner/identity.ts';
import { readProcess } from '../../src/runner/rundir.ts';
import { openStore } from '../../src/store/open.ts';
import {
  dbUrlFor,
  DIALECTS,
  fixturePlans,
  OPERATOR,
  startEngine,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';

const PLAN = ['/bin/sh', '-c', "(trap '' TERM; exec sleep 309) & sleep 100"];

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
  it('an unknown attempt cancelled while supervised again is corrected only once its group is gone', async () => {
    const dir = tempDir();
    const extra = {
      plans: {
        ...fixturePlans(),
        grouped: { deploy: PLAN, teardown: ['/bin/true'], timeout: '60s', cancel_grace: '2s' },
      },
      reap_interval: '200ms',
    };
    const first = await startEngine(dir, extra, dialect);
    engines.push(first);
    await first.createDeployment({ name: 'u', plan: 'grouped' }, OPERATOR);
    const att = await first.startDeploy('u', {}, OPERATOR);
    await waitFor(async () => (await first.getAttempt(att.id)).state === 'running', 'running');
    const run = path.join(dir, 'attempts', att.id);
    const plan = readProcess(run)!;
    groups.push(plan.pid);
    await waitFor(() => groupMembers(plan).length >= 3, 'the plan, its child and its sleep');
    // What a peer on another machine leaves while this instance is away: the attempt lost (runner_lost).
    await first.close();
    engines.splice(0);
    const store = await openStore(await dbUrlFor(dialect, dir));
    try {
      const at = new Date().toISOString();
      await store.db
        .updateTable('attempts')
        .set({ state: 'unknown', reason: 'runner_lost', ended_at: at })
        .where('id', '=', att.id)
        .execute();
      await store.db.updateTable('deployments').set({ state: 'unknown' }).execute();
    } finally {
      await store.close();
    }
    // Back: its plan lives here, so it supervises the attempt again; a cancel through it stops the plan.
    const again = await startEngine(dir, extra, dialect);
    engines.push(again);
    expect((await again.cancel('u', OPERATOR)).cancel_requested_at).not.toBeNull();
    const settled = await waitFor(
      async () => {
        const a = await again.getAttempt(att.id);
        return a.state !== 'unknown' ? a : null;
      },
      'the late result',
      20_000,
    );
    expect(groupMembers(plan)).toEqual([]);
    expect({ state: settled.state, reason: settled.reason }).toEqual({
      state: 'failed',
      reason: 'late_result',
    });
  }, 60_000);
});
