// Reconcile's work per pass does not grow with history (issue 17.11): `unknown` attempts an operator no
// longer waits on (their deployment moved on) are looked at a page per pass, in turn, not all of them
// every `reap_interval`; a late exit record among them is still found and settled.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { newAttemptId } from '../../src/lifecycle/ids.ts';
import { UNKNOWN_PAGE } from '../../src/lifecycle/recovery.ts';
import { dialectConfig, DIALECTS, OPERATOR, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';

const engines: Lifeline[] = [];
afterAll(async () => {
  for (const e of engines) await e.close();
});

describe.each(DIALECTS)('reconcile over old unknown attempts (%s)', (dialect) => {
  it('looks at a bounded page of them per pass, and still settles a late exit among them', async () => {
    const dir = tempDir();
    const looked: string[] = [];
    const engine = await openLifeline({
      config: await dialectConfig(dialect, dir, { reap_interval: '60s' }),
      logger: quietLogger(),
      onReconcileLook: (id) => looked.push(id),
    });
    engines.push(engine);
    await engine.start();
    await engine.createDeployment({ name: 'hist', plan: 'ok' }, OPERATOR);
    const tpl = await engine.startDeploy('hist', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(tpl.id)).state === 'succeeded', 'the template');
    const row = await engine.store.db
      .selectFrom('attempts')
      .selectAll()
      .where('id', '=', tpl.id)
      .executeTakeFirstOrThrow();

    // Old lost outcomes of a deployment that has long moved on: each with a run dir and no exit record.
    const old = new Set<string>();
    let number = 1000;
    async function addOld(n: number): Promise<void> {
      for (let i = 0; i < n; i++) {
        const id = newAttemptId();
        const runDir = path.join(dir, 'attempts', id);
        fs.cpSync(row.run_dir!, runDir, { recursive: true });
        fs.rmSync(path.join(runDir, 'exit'));
        await engine.store.db
          .insertInto('attempts')
          .values({
            ...row,
            id,
            number: number++,
            state: 'unknown',
            reason: 'exit_unobserved',
            run_dir: runDir,
          })
          .execute();
        old.add(id);
      }
    }
    const pass = async () => {
      looked.length = 0;
      await engine.reconcileNow();
      return looked.filter((id) => old.has(id)).length;
    };

    await addOld(50);
    const small = await pass();
    await addOld(100);
    const large = await pass();
    expect(small).toBeLessThanOrEqual(UNKNOWN_PAGE);
    expect(large).toBeLessThanOrEqual(UNKNOWN_PAGE);
    expect(large).toBeGreaterThan(0);

    // An exit record turns up for one of them: found within the passes one round of pages takes.
    const late = [...old][77];
    const lateDir = path.join(dir, 'attempts', late);
    fs.copyFileSync(path.join(row.run_dir!, 'exit'), path.join(lateDir, 'exit'));
    const seen = new Set<string>();
    for (let i = 0; i < Math.ceil(old.size / UNKNOWN_PAGE) + 1; i++) {
      looked.length = 0;
      await engine.reconcileNow();
      for (const id of looked) seen.add(id);
    }
    expect([...old].every((id) => seen.has(id))).toBe(true);
    const settled = await engine.getAttempt(late);
    expect({ state: settled.state, reason: settled.reason }).toEqual({
      state: 'succeeded',
      reason: 'late_result',
    });
  }, 60_000);
});
