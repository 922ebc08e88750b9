// Recovery paths of SPEC §5 that the model test does not reach on its own.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { nowIso } from '../../src/lifecycle/ids.ts';
import { isAlive } from '../../src/runner/identity.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import { OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

const open: Lifeline[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

async function restart(dir: string, extra: Record<string, unknown> = {}): Promise<Lifeline> {
  const e = await startEngine(dir, extra);
  open.push(e);
  return e;
}

/**
 * What a crash between the accepting commit and the launch leaves: a queued attempt row, the deployment
 * `deploying`, its state_transition event (so the fold stays consistent), and nothing on disk.
 */
function plantQueuedAttempt(
  dir: string,
  depId: string,
  attemptId: string,
  o: { owner: string; runDir: string | null },
): void {
  const raw = new Database(path.join(dir, 'lifeline.db'));
  const at = nowIso();
  raw
    .prepare(
      `INSERT INTO attempts (id, deployment_id, number, kind, state, params, force, requested_by, queued_at, recovered,
        owner, prev_state, version, run_dir, timeout_ms, cancel_grace_ms, stdout_offset, stderr_offset, events_offset)
       VALUES (?, ?, 1, 'deploy', 'queued', '{}', 0, 'ci', ?, 0, ?, 'pending', 1, ?, 60000, 1000, 0, 0, 0)`,
    )
    .run(attemptId, depId, at, o.owner, o.runDir);
  raw
    .prepare(`UPDATE deployments SET state = 'deploying', version = 2, current_attempt_id = ?`)
    .run(attemptId);
  const seq = Number(
    (raw.prepare(`UPDATE counters SET value = value + 1 RETURNING value`).get() as { value: number }).value,
  );
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
  raw
    .prepare(
      `INSERT INTO events (seq, type, at, deployment_id, attempt_id, data) VALUES (?, 'state_transition', ?, ?, NULL, ?)`,
    )
    .run(seq, at, depId, JSON.stringify(data));
  raw.close();
}

describe('recovery', () => {
  it('a restart adopts a live attempt, keeps tailing it, and finishes it recovered', async () => {
    const dir = tempDir();
    const first = await startEngine(dir);
    await first.createDeployment({ name: 'adopt', plan: 'short' }, OPERATOR);
    const att = await first.startDeploy('adopt', {}, OPERATOR);
    await waitFor(async () => (await first.getAttempt(att.id)).state === 'running', 'running');
    await first.close(); // the server goes away; the attempt does not
    const proc = readProcess(path.join(dir, 'attempts', att.id))!;
    const second = await restart(dir);
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
    const engine = await restart(dir);
    await engine.createDeployment({ name: 'idem', plan: 'ok' }, OPERATOR);
    const att = await engine.startDeploy('idem', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'succeeded', 'succeeded');
    const before = (await engine.listEvents({ limit: 1000 })).items.length;
    for (let i = 0; i < 5; i++) await engine.reconcileNow();
    expect((await engine.listEvents({ limit: 1000 })).items.length).toBe(before);
  });

  it('a queued attempt whose supervisor never started becomes unknown/start_interrupted after the start deadline', async () => {
    const dir = tempDir();
    const engine = await restart(dir, { start_deadline: '300ms' });
    await engine.createDeployment({ name: 'orphan', plan: 'ok' }, OPERATOR);
    // What a crash between the accepting commit and the launch leaves: a queued row and nothing on disk.
    const dep = await engine.store.db.selectFrom('deployments').selectAll().executeTakeFirstOrThrow();
    await engine.close();
    open.pop();
    plantQueuedAttempt(dir, dep.id, 'att_00000000000000000000000001', {
      owner: JSON.parse(fs.readFileSync(path.join(dir, 'instance.json'), 'utf8')).id,
      runDir: path.join(dir, 'attempts', 'att_00000000000000000000000001'),
    });
    const again = await restart(dir, { start_deadline: '300ms' });
    const a = await waitFor(async () => {
      const x = await again.getAttempt('att_00000000000000000000000001');
      return x.state === 'unknown' ? x : null;
    }, 'start_interrupted');
    expect(a.reason).toBe('start_interrupted');
    expect((await again.getDeployment('orphan')).state).toBe('unknown');
  });

  it('cancelling an orphaned queued attempt cancels it at once and puts the deployment back', async () => {
    const dir = tempDir();
    const engine = await restart(dir, { start_deadline: '1h' });
    await engine.createDeployment({ name: 'back', plan: 'ok' }, OPERATOR);
    const dep = await engine.store.db.selectFrom('deployments').selectAll().executeTakeFirstOrThrow();
    await engine.close();
    open.pop();
    plantQueuedAttempt(dir, dep.id, 'att_00000000000000000000000002', { owner: 'ins_gone', runDir: null });
    const again = await restart(dir, { start_deadline: '1h' });
    const c = await again.cancel('back', OPERATOR);
    expect(c).toMatchObject({ state: 'cancelled', reason: 'cancelled', rc: null });
    expect((await again.getDeployment('back')).state).toBe('pending');
  });

  it('a process killed together with its supervisor while the server is down becomes unknown/exit_unobserved', async () => {
    const dir = tempDir();
    const first = await startEngine(dir);
    await first.createDeployment({ name: 'lost', plan: 'sleep' }, OPERATOR);
    const att = await first.startDeploy('lost', {}, OPERATOR);
    await waitFor(async () => (await first.getAttempt(att.id)).state === 'running', 'running');
    await first.close();
    const run = path.join(dir, 'attempts', att.id);
    process.kill(-readSupervisor(run)!.pid, 'SIGKILL');
    process.kill(-readProcess(run)!.pid, 'SIGKILL');
    await waitFor(() => !isAlive(readProcess(run)!) && !isAlive(readSupervisor(run)!), 'processes gone');
    const second = await restart(dir);
    // start() ran recovery: nothing is left running without a live process
    const a = await second.getAttempt(att.id);
    expect(a).toMatchObject({ state: 'unknown', reason: 'exit_unobserved', rc: null, recovered: true });
    expect((await second.getDeployment('lost')).state).toBe('unknown');
  });

  it('a late exit record settles an unknown attempt and, while current, the deployment', async () => {
    const dir = tempDir();
    const engine = await restart(dir);
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
