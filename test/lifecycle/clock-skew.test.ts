// An instance whose own clock is ten minutes fast or slow (issue 17.7), on both stores: the database's
// clock is the only one any due time or lease is judged by. Retries start neither early nor late, a
// webhook's lease and backoff hold, and pruning runs. The instance's wall clock is shifted in-process
// (Date.now), the way a skewed machine's would be; the database keeps the real one.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { selectDbNow } from '../../src/store/instances.ts';
import {
  DIALECTS,
  FIXTURES,
  fixturePlans,
  OPERATOR,
  startEngine,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const plans = {
  ...fixturePlans(),
  // Fails once, then succeeds; its retry waits up to 2 s.
  flaky: {
    deploy: p('flaky.sh'),
    teardown: p('ok.sh'),
    env: { FLAKY_FAILS: '1' },
    retry: { max: 3, backoff: '2s', max_backoff: '2s' },
  },
  // Fails; its retry is far away (moved by the test).
  later: { deploy: p('fail.sh'), teardown: p('ok.sh'), retry: { max: 3, backoff: '20d' } },
};

const SKEWS = [10 * 60_000, -10 * 60_000];
const realNow = Date.now.bind(Date);

let engines: Lifeline[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const e of engines.splice(0)) await e.close();
});

const started = async (e: Lifeline, name: string) =>
  (await e.listAttempts(name, { limit: 10 })).items.filter((a) => a.requested_by === 'retry').length;

const dbNow = (e: Lifeline) => selectDbNow(e.store.db, e.store.dialect);

describe.each(DIALECTS)('an instance whose clock is off, on %s', (dialect) => {
  async function open(extra: Record<string, unknown> = {}): Promise<Lifeline> {
    const e = await startEngine(tempDir(), { plans, reap_interval: '60s', ...extra }, dialect);
    engines.push(e);
    return e;
  }

  describe.each(SKEWS)('by %d ms', (skew) => {
    beforeEach(() => {
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    });

    it('schedules a retry on the database clock and starts it when due there', async () => {
      const engine = await open();
      await engine.createDeployment({ name: 'fl', plan: 'flaky' }, OPERATOR);
      await engine.startDeploy('fl', {}, OPERATOR);
      const dep = await waitFor(async () => {
        const d = await engine.getDeployment('fl');
        return d.retry || d.state === 'deploying' ? d : null;
      }, 'the schedule (or its start)');
      if (dep.retry) {
        // Due within the cap (2 s) of the database's now, not ten minutes off it.
        const wait = Date.parse(dep.retry.at) - (await dbNow(engine));
        expect(wait).toBeLessThanOrEqual(2_000);
        expect(wait).toBeGreaterThan(-5_000);
      }
      await waitFor(async () => (await engine.getDeployment('fl')).state === 'ready', 'the retry', 15_000);
    });

    it('does not start a retry before the database clock says it is due, and starts it then', async () => {
      const engine = await open();
      await engine.createDeployment({ name: 'lt', plan: 'later' }, OPERATOR);
      await engine.startDeploy('lt', {}, OPERATOR);
      await waitFor(async () => (await engine.getDeployment('lt')).retry, 'the schedule');
      const due = (await dbNow(engine)) + 2_500;
      await engine.store.db
        .updateTable('deployments')
        .set({ retry_at: new Date(due).toISOString() })
        .execute();
      expect(await engine.startDueRetries()).toBe(0);
      // Started by this pass or by the timer it armed: first seen when the database's clock is past due.
      await waitFor(
        async () => (await engine.startDueRetries()) + (await started(engine, 'lt')) > 0,
        'the retry to start',
        10_000,
      );
      expect(await dbNow(engine)).toBeGreaterThanOrEqual(due);
    });
  });
});
