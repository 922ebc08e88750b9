// runner_event events are capped per attempt by `log_limit` like log_line ones (issue 17 point 12), on
// both stores: past the cap one marker says so and the rest stay in the run dir's events file only.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { runDirPaths } from '../../src/runner/rundir.ts';
import { DIALECTS, dbUrlFor, type TestDialect } from '../helpers/dialect.ts';
import { ADMIN, FIXTURES, fixturePlans, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { expectAttemptHistories, expectStoreInvariants, snapshotOf } from '../helpers/invariants.ts';

const engines: Lifeline[] = [];
afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
});

describe.each(DIALECTS)('runner_event cap on %s', (dialect: TestDialect) => {
  it('stores at most log_limit.events runner events, then one marker; the rest stay in the file', async () => {
    const dir = tempDir('lifeline-event-cap-');
    const script = path.join(FIXTURES, 'many-events.sh');
    const config = configFromObject(
      {
        data_dir: dir,
        db: await dbUrlFor(dialect, dir),
        durable_commits: false,
        log_limit: { lines: 1000, events: 30 },
        plans: {
          ...fixturePlans(),
          many: { deploy: [script], teardown: [script], env: { EVENTS_COUNT: '120' } },
        },
      },
      { file: null, baseDir: dir, env: {} },
    );
    const engine = await openLifeline({ config, logger: quietLogger() });
    engines.push(engine);
    await engine.start();
    await engine.createDeployment({ name: 'many', plan: 'many' }, ADMIN);
    const att = await engine.startDeploy('many', {}, ADMIN);
    await waitFor(async () => (await engine.getDeployment('many')).state === 'ready', 'many ready');
    await engine.settle();

    const d = engine.store.db;
    const rows = await d
      .selectFrom('events')
      .select(['type', 'data'])
      .where('attempt_id', '=', att.id)
      .where('type', 'in', ['log_line', 'runner_event'])
      .orderBy('seq')
      .execute();
    const runner = rows.filter((r) => r.type === 'runner_event').map((r) => JSON.parse(r.data));
    // The plan's own 30, then the marker, and nothing after it.
    expect(runner.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => ({ progress: i + 1 })));
    expect(runner).toHaveLength(31);
    expect(runner[30]).toMatchObject({ lifeline: 'runner_events_capped', events: 30 });
    // log_line has its own count: both lines are stored.
    expect(rows.filter((r) => r.type === 'log_line')).toHaveLength(2);
    // The rest is still in the raw file.
    const row = await d
      .selectFrom('attempts')
      .select('run_dir')
      .where('id', '=', att.id)
      .executeTakeFirstOrThrow();
    const file = fs.readFileSync(runDirPaths(row.run_dir!).events, 'utf8');
    expect(file.trim().split('\n')).toHaveLength(120);
    const s = await snapshotOf(d);
    expectStoreInvariants(s);
    expectAttemptHistories(s);
    await engine.close();
  }, 60_000);
});
