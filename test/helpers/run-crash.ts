// Shared by the run crash test and its child engine: the stack and the engine config.
import path from 'node:path';
import type { LifelineConfig } from '../../src/config/types.ts';
import { FIXTURES, fixturePlans, testConfig } from './engine.ts';

export const RUN_CRASH_CHILD = path.resolve(import.meta.dirname, 'run-crash-child.ts');

/** net, then two vms after it, then fin after them: each unit sleeps a moment. */
export const RUN_CRASH_STACK = {
  name: 'rc',
  units: [
    { key: 'net', plan: 'nap' },
    { key: 'vm', plan: 'nap', count: 2, after: ['net'] },
    { key: 'fin', plan: 'nap', after: ['vm'] },
  ],
};

export function runCrashConfig(dir: string, db: string): LifelineConfig {
  const nap = [path.join(FIXTURES, 'sleep.sh')];
  return testConfig(
    dir,
    {
      plans: { ...fixturePlans(), nap: { deploy: nap, teardown: nap, env: { SLEEP_SECONDS: '0.25' } } },
      reap_interval: '1s',
      durable_commits: true,
    },
    db,
  );
}
