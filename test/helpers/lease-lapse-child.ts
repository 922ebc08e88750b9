// The body of the lease-lapse test (test/lifecycle/lease-lapse.test.ts), run as
//   node --import tsx lease-lapse-child.ts
// in a process of its own: without the fix its event loop never turns again, which would hang a
// vitest worker for good; here the test's timeout kills the process instead. Prints the attempt's end
// state as one JSON line on stdout, and exits 0.
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { OPERATOR, startEngine, tempDir, waitFor } from './engine.ts';
import { holdEventLoop } from './hold.ts';

const engine: Lifeline = await startEngine(tempDir(), { lease_ttl: '1s', reap_interval: '60s' });
try {
  await engine.createDeployment({ name: 'api', plan: 'sleep' }, OPERATOR);
  const att = await engine.startDeploy('api', {}, OPERATOR);
  await waitFor(async () => (await engine.getAttempt(att.id)).state === 'running', 'running');
  await engine.settle(); // no round running: the next wake-up starts one
  holdEventLoop(1_500); // past lease_ttl: the lease is no longer held, and no timer (the heartbeat) ran
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
  process.stdout.write(`${JSON.stringify({ state: a.state })}\n`);
} finally {
  await engine.close();
}
