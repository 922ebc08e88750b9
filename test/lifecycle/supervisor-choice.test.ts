// `supervisor:` chooses what starts attempts (runner.pl by default, supervisor.sh on request); the
// engine runs, cancels and recovers attempts the same way with either, since both write the same records.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { readSupervisor } from '../../src/runner/rundir.ts';
import { ADMIN, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

let engine: Lifeline | null = null;
afterEach(async () => {
  await engine?.close();
  engine = null;
});

describe.each([
  ['perl', 'runner.pl'],
  ['sh', 'supervisor.sh'],
] as const)('supervisor: %s', (kind, script) => {
  it(`runs, cancels and recovers attempts through ${script}`, async () => {
    const dir = tempDir();
    engine = await startEngine(dir, { supervisor: kind });
    await engine.createDeployment({ name: 'a', plan: 'short' }, ADMIN);
    await engine.createDeployment({ name: 'b', plan: 'sleep' }, ADMIN);
    const done = await engine.startDeploy('a', {}, ADMIN);
    await waitFor(async () => (await engine!.getAttempt(done.id)).state === 'succeeded', 'a to succeed');

    const long = await engine.startDeploy('b', {}, ADMIN);
    const runDir = path.join(dir, 'attempts', long.id);
    const sup = await waitFor(() => readSupervisor(runDir), 'the supervisor record');
    expect(fs.readFileSync(`/proc/${sup.pid}/cmdline`, 'utf8')).toContain(script);
    await waitFor(async () => (await engine!.getAttempt(long.id)).state === 'running', 'b to run');

    // A restart adopts it; a cancel through the new engine ends it.
    await engine.close();
    engine = await startEngine(dir, { supervisor: kind });
    expect((await engine.getAttempt(long.id)).state).toBe('running');
    await engine.cancel('b', ADMIN);
    const ended = await waitFor(async () => {
      const a = await engine!.getAttempt(long.id);
      return a.state === 'running' ? null : a;
    }, 'b to end');
    expect({ state: ended.state, reason: ended.reason }).toMatchObject({ state: 'cancelled' });
  });
});
