import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { ADMIN, DIALECTS, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

let engine: Lifeline | null = null;
afterEach(async () => {
  await engine?.close();
  engine = null;
});

describe.each(DIALECTS)('engine smoke (%s)', (dialect) => {
  it('deploys and tears down', async () => {
    engine = await startEngine(tempDir(), {}, dialect);
    const dep = await engine.createDeployment({ name: 'web-1', plan: 'ok' }, OPERATOR);
    expect(dep.state).toBe('pending');
    const att = await engine.startDeploy('web-1', {}, OPERATOR);
    expect(att.state === 'queued' || att.state === 'running').toBe(true);
    const ready = await waitFor(async () => {
      const d = await engine!.getDeployment('web-1');
      return d.state === 'ready' ? d : null;
    }, 'ready');
    expect(ready.current_attempt?.state).toBe('succeeded');
    const td = await engine.teardown('web-1', { confirm: 'web-1' }, OPERATOR);
    expect(td.kind).toBe('teardown');
    await waitFor(async () => (await engine!.getDeployment('web-1')).state === 'torn_down', 'torn_down');
    const { items } = await engine.listEvents({ limit: 1000 });
    expect(items.map((e) => e.seq)).toEqual(items.map((_, i) => i + 1));
    const log = await engine.readAttemptLog(att.id);
    expect(log.text).toContain('deploying web-1 attempt 1 (deploy)');
    expect(log.text).toContain('to stderr');
    await engine.deleteDeployment('web-1', {}, ADMIN);
  });
});
