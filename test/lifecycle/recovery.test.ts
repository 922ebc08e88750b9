// Recovery paths of SPEC §5 that the model test does not reach on its own.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { nowIso } from '../../src/lifecycle/ids.ts';
import { openStore } from '../../src/store/open.ts';
import { isAlive } from '../../src/runner/identity.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import {
  dbUrlFor,
  DIALECTS,
  OPERATOR,
  startEngine,
  tempDir,
  waitFor,
  type TestDialect,
} from '../helpers/engine.ts';

const open: Lifeline[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

async function restart(dir: string, extra: Record<string, unknown>, dialect: TestDialect): Promise<Lifeline> {
  const e = await startEngine(dir, extra, dialect);
  open.push(e);
  return e;
}

/**
 * What a crash between the accepting commit and the launch leaves: a queued attempt row, the deployment
 * `deploying`, its state_transition event (so the fold stays consistent), and nothing on disk.
 */
async function plantQueuedAttempt(
  url: string,
  depId: string,
  attemptId: string,
  o: { owner: string; runDir: string | null },
): Promise<void> {
  const store = await openStore(url);
  const at = nowIso();
  try {
    await store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('attempts')
        .values({
          id: attemptId,
          deployment_id: depId,
          number: 1,
          kind: 'deploy',
          state: 'queued',
          reason: null,
          rc: null,
          params: '{}',
          force: 0,
          requested_by: 'ci',
          queued_at: at,
          started_at: null,
          ended_at: null,
          cancel_requested_at: null,
          timed_out_at: null,
          recovered: 0,
          owner: o.owner,
          prev_state: 'pending',
          version: 1,
          pid: null,
          process_start: null,
          boot_id: null,
          run_dir: o.runDir,
          timeout_ms: 60000,
          cancel_grace_ms: 1000,
          stdout_offset: 0,
          stderr_offset: 0,
          events_offset: 0,
        })
        .execute();
      await trx
        .updateTable('deployments')
        .set({ state: 'deploying', version: 2, current_attempt_id: attemptId })
        .execute();
      const { value } = await trx
        .updateTable('counters')
        .set((eb) => ({ value: eb('value', '+', 1) }))
        .returning('value')
        .executeTakeFirstOrThrow();
      const data = {
        entity: 'deployment',
        id: depId,
        from: 'pending',
        to: 'deploying',
        trigger: 'deploy_accepted',
        reason: null,
        actor: 'ci',
        version: 2,
      };
      await trx
        .insertInto('events')
        .values({
          seq: Number(value),
          type: 'state_transition',
          at,
          deployment_id: depId,
          attempt_id: null,
          data: JSON.stringify(data),
        })
        .execute();
    });
  } finally {
    await store.close();
  }
}

describe.each(DIALECTS)('recovery (%s)', (dialect) => {
  it('a restart adopts a live attempt, keeps tailing it, and finishes it recovered', async () => {
    const dir = tempDir();
    const first = await startEngine(dir, {}, dialect);
    await first.createDeployment({ name: 'adopt', plan: 'short' }, OPERATOR);
    const att = await first.startDeploy('adopt', {}, OPERATOR);
    await waitFor(async () => (await first.getAttempt(att.id)).state === 'running', 'running');
    await first.close(); // the server goes away; the attempt does not
    const proc = readProcess(path.join(dir, 'attempts', att.id))!;
    const second = await restart(dir, {}, dialect);
    const a = await waitFor(async () => {
      const x = await second.getAttempt(att.id);
      return x.state === 'succeeded' ? x : null;
    }, 'succeeded');
    expect(a.recovered).toBe(true);
    expect(isAlive(proc)).toBe(false);
    expect((await second.readAttemptLog(att.id)).text).toBe('sleeping\n');
    const ends = (await second.listEvents({ limit: 1000, types: ['attempt_end'] })).items;
    expect(ends).toHaveLength(1);
    expect(ends[0].data).toMatchObject({ state: 'succeeded', rc: 0, recovered: true });
  });

  it('repeated reconciles are idempotent: one attempt_end per attempt', async () => {
    const dir = tempDir();
    const engine = await restart(dir, {}, dialect);
    await engine.createDeployment({ name: 'idem', plan: 'ok' }, OPERATOR);
    const att = await engine.startDeploy('idem', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'succeeded', 'succeeded');
    const before = (await engine.listEvents({ limit: 1000 })).items.length;
    for (let i = 0; i < 5; i++) await engine.reconcileNow();
    expect((await engine.listEvents({ limit: 1000 })).items.length).toBe(before);
  });

  it('a queued attempt whose supervisor never started becomes unknown/start_interrupted after the start deadline', async () => {
    const dir = tempDir();
    const engine = await restart(dir, { start_deadline: '300ms' }, dialect);
    await engine.createDeployment({ name: 'orphan', plan: 'ok' }, OPERATOR);
    // What a crash between the accepting commit and the launch leaves: a queued row and nothing on disk.
    const dep = await engine.store.db.selectFrom('deployments').selectAll().executeTakeFirstOrThrow();
    await engine.close();
    open.pop();
    await plantQueuedAttempt(await dbUrlFor(dialect, dir), dep.id, 'att_00000000000000000000000001', {
      owner: JSON.parse(fs.readFileSync(path.join(dir, 'instance.json'), 'utf8')).id,
      runDir: path.join(dir, 'attempts', 'att_00000000000000000000000001'),
    });
    const again = await restart(dir, { start_deadline: '300ms' }, dialect);
    const a = await waitFor(async () => {
      const x = await again.getAttempt('att_00000000000000000000000001');
      return x.state === 'unknown' ? x : null;
    }, 'start_interrupted');
    expect(a.reason).toBe('start_interrupted');
    expect((await again.getDeployment('orphan')).state).toBe('unknown');
  });

  it('cancelling an orphaned queued attempt cancels it at once and puts the deployment back', async () => {
    const dir = tempDir();
    const engine = await restart(dir, { start_deadline: '1h' }, dialect);
    await engine.createDeployment({ name: 'back', plan: 'ok' }, OPERATOR);
    const dep = await engine.store.db.selectFrom('deployments').selectAll().executeTakeFirstOrThrow();
    await engine.close();
    open.pop();
    await plantQueuedAttempt(await dbUrlFor(dialect, dir), dep.id, 'att_00000000000000000000000002', {
      owner: 'ins_gone',
      runDir: null,
    });
    const again = await restart(dir, { start_deadline: '1h' }, dialect);
    const c = await again.cancel('back', OPERATOR);
    expect(c).toMatchObject({ state: 'cancelled', reason: 'cancelled', rc: null });
    expect((await again.getDeployment('back')).state).toBe('pending');
  });

  it('a process killed together with its supervisor while the server is down becomes unknown/exit_unobserved', async () => {
    const dir = tempDir();
    const first = await startEngine(dir, {}, dialect);
    await first.createDeployment({ name: 'lost', plan: 'sleep' }, OPERATOR);
    const att = await first.startDeploy('lost', {}, OPERATOR);
    await waitFor(async () => (await first.getAttempt(att.id)).state === 'running', 'running');
    await first.close();
    const run = path.join(dir, 'attempts', att.id);
    process.kill(-readSupervisor(run)!.pid, 'SIGKILL');
    process.kill(-readProcess(run)!.pid, 'SIGKILL');
    await waitFor(() => !isAlive(readProcess(run)!) && !isAlive(readSupervisor(run)!), 'processes gone');
    const second = await restart(dir, {}, dialect);
    // start() ran recovery: nothing is left running without a live process
    const a = await second.getAttempt(att.id);
    expect(a).toMatchObject({ state: 'unknown', reason: 'exit_unobserved', rc: null, recovered: true });
    expect((await second.getDeployment('lost')).state).toBe('unknown');
  });

  it('a late exit record settles an unknown attempt and, while current, the deployment', async () => {
    const dir = tempDir();
    const engine = await restart(dir, {}, dialect);
    await engine.createDeployment({ name: 'late', plan: 'sleep' }, OPERATOR);
    const att = await engine.startDeploy('late', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'running', 'running');
    const run = path.join(dir, 'attempts', att.id);
    process.kill(-readSupervisor(run)!.pid, 'SIGKILL');
    process.kill(-readProcess(run)!.pid, 'SIGKILL');
    await waitFor(async () => (await engine.getDeployment('late')).state === 'unknown', 'unknown');
    fs.writeFileSync(path.join(run, '.exit.tmp'), `0 - ${Date.now()}\n`);
    fs.renameSync(path.join(run, '.exit.tmp'), path.join(run, 'exit'));
    await engine.reconcileNow();
    expect(await engine.getAttempt(att.id)).toMatchObject({
      state: 'succeeded',
      reason: 'late_result',
      rc: 0,
    });
    expect((await engine.getDeployment('late')).state).toBe('ready');
    const ends = (await engine.listEvents({ limit: 1000, types: ['attempt_end'] })).items.map((e) => e.data);
    expect(ends).toEqual([
      expect.objectContaining({ state: 'unknown', reason: 'exit_unobserved' }),
      expect.objectContaining({ state: 'succeeded', reason: 'late_result', rc: 0 }),
    ]);
  });
});
