// A lease that lapses in the middle of a round (issue 17 point 5): the heartbeat stops getting
// through (a renew that never answers, as on a stalled database) while a flooding attempt keeps the
// watcher's round going. From the lapse on, the instance must not act: no timeout recorded, no signal
// sent, no verifying check started, although a timeout falls due and a verified plan exits 0 then.
// (The old watcher asked the lease once per round, so the flood carried it past the lapse.)
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import type { Ctx } from '../../src/lifecycle/context.ts';
import { isAlive } from '../../src/runner/identity.ts';
import { readProcess } from '../../src/runner/rundir.ts';
import { selectAttemptById } from '../../src/store/attempts.ts';
import { DIALECTS, fixturePlans, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';
import { holdEventLoop } from '../helpers/hold.ts';

/** Holds the event loop, as a long synchronous step or a descheduled process would. */
async function maxSeq(engine: Lifeline): Promise<number> {
  const row = await engine.store.db
    .selectFrom('events')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
}

const FLOOD = '$|=1; while (1) { print "x\\n" }';
/**
 * When `late` times out and `verified` exits, after their start: past the setup before the lapse (some
 * 100–200 ms from their start to the hold), and the hold that follows outlasts lease_ttl (1 s).
 */
const DUE_MS = 2_500;
/** The most log lines of one stream one ingestion transaction takes (attempt-writes.ts TX_LIMITS). */
const ONE_BATCH = { postgres: 400, sqlite: 200 };

describe.each(DIALECTS)('on %s', (dialect) => {
  let engine: Lifeline;
  let dir: string;
  let marker: string;
  const runDirs: string[] = [];
  beforeAll(async () => {
    dir = tempDir();
    marker = path.join(dir, 'checked');
    const plans = {
      ...fixturePlans(),
      flood: { deploy: ['/usr/bin/perl', '-e', FLOOD], teardown: ['/bin/true'], cancel_grace: '100ms' },
      late: {
        deploy: ['/bin/sleep', '30'],
        teardown: ['/bin/true'],
        timeout: `${DUE_MS}ms`,
        cancel_grace: '100ms',
      },
      verified: {
        deploy: ['/bin/sleep', String(DUE_MS / 1000)],
        teardown: ['/bin/true'],
        check: ['/bin/sh', '-c', `echo checked >> '${marker}'`],
      },
    };
    engine = await startEngine(dir, { plans, lease_ttl: '1s', reap_interval: '60s' }, dialect);
  });
  afterAll(async () => {
    await engine.close();
    for (const d of runDirs) {
      const proc = readProcess(d);
      if (proc && isAlive(proc)) process.kill(-proc.pid, 'SIGKILL');
    }
  });

  it('no timeout, signal or check after the lease lapsed mid-round', async () => {
    const lease = (engine as unknown as { ctx: Ctx }).ctx.lease;
    const ids: Record<string, string> = {};
    for (const plan of ['flood', 'late', 'verified']) {
      await engine.createDeployment({ name: plan, plan }, OPERATOR);
      ids[plan] = (await engine.startDeploy(plan, {}, OPERATOR)).id;
      runDirs.push(path.join(dir, 'attempts', ids[plan]));
    }
    for (const id of Object.values(ids))
      await waitFor(async () => (await engine.getAttempt(id)).state === 'running', `${id} running`);
    // A flood outpaces ingestion, so the watcher's round never runs dry: it is mid-round now.
    await waitFor(async () => (await maxSeq(engine)) > 1_000, 'the flood to be ingested');
    // The heartbeat stops getting through (a renew that never answers, as on a stalled database), and
    // the loop is held (as on a starved machine) past lease_ttl, past the timeout of `late` and past
    // the exit of `verified`. When the loop turns again, the round resumes with the lease lapsed.
    lease.renew = () => new Promise(() => {});
    const rows = await Promise.all(
      [ids.late, ids.verified].map((id) => selectAttemptById(engine.store.db, id)),
    );
    const lastSeq = await maxSeq(engine);
    holdEventLoop(Math.max(...rows.map((r) => Date.parse(r!.started_at!) + DUE_MS + 500)) - Date.now());
    expect(lease.live()).toBe(false);
    // The round goes on (flood, timer, exit record): an instance acting on a lapsed lease times `late`
    // out, signals it and starts the check within milliseconds of the loop turning.
    await new Promise((r) => setTimeout(r, 1_000));

    const late = (await selectAttemptById(engine.store.db, ids.late))!;
    expect(late.state).toBe('running');
    expect(late.timed_out_at).toBeNull();
    const lateProc = readProcess(runDirs[1])!;
    expect(isAlive(lateProc)).toBe(true); // never signalled
    expect(fs.existsSync(marker)).toBe(false); // no verifying check ran
    // Nothing begun after the lapse is written. One ingestion of the flood begun before it may still
    // commit (on Postgres its statements were in flight across the hold): at most one batch of its
    // stdout (attempt-writes.ts TX_LIMITS), where a round going on would have written batch after batch.
    expect((await maxSeq(engine)) - lastSeq).toBeLessThanOrEqual(ONE_BATCH[dialect]);
  }, 30_000);
});
