// A lease that lapses while the watcher has work (the event loop was held longer than lease_ttl, as on
// a starved machine): the watcher waits for the lease instead of re-running its round on the microtask
// queue, which starved the heartbeat that renews the lease and hung the instance for good (without the
// fix this test hangs its worker: the loop never turns again, so not even the test timeout fires).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

let engine: Lifeline;
beforeAll(async () => {
  engine = await startEngine(tempDir(), { lease_ttl: '1s', reap_interval: '60s' });
});
afterAll(async () => {
  await engine.close();
});

/** Holds the event loop, as a long synchronous step or a descheduled process would. */
function hold(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // busy
  }
}

describe('lease lapse with work pending', () => {
  it('the loop keeps turning, the lease comes back and the attempt ends', async () => {
    await engine.createDeployment({ name: 'api', plan: 'sleep' }, OPERATOR);
    const att = await engine.startDeploy('api', {}, OPERATOR);
    await waitFor(async () => (await engine.getAttempt(att.id)).state === 'running', 'running');
    await engine.settle(); // no round running: the next wake-up starts one
    hold(1_500); // past lease_ttl: the lease is no longer held, and no timer (the heartbeat) ran
    const settled = engine.settle(); // wakes the watcher while the lease is lapsed
    await new Promise((r) => setTimeout(r, 50)); // never fired while the watcher spun
    await settled;
    await engine.cancel('api', OPERATOR);
    const a = await waitFor(
      async () => {
        const x = await engine.getAttempt(att.id);
        return x.state !== 'queued' && x.state !== 'running' ? x : null;
      },
      'the attempt to end',
      30_000,
    );
    expect(a.state).toBe('cancelled');
  });
});
