// The engine process of the run crash test (test/lifecycle/run-crash.test.ts), run as
//   node run-crash-child.ts DATA_DIR DB_URL ACTION
// with LIFELINE_TEST_CRASH_AT / LIFELINE_TEST_CRASH_NTH naming where it dies by SIGKILL. It opens the
// engine on DATA_DIR and DB_URL (recovering what a killed one left), then does ACTION: `deploy` creates
// the stack if it is missing and starts a deploy run; `teardown` starts a teardown run; `idle` does
// nothing more. It says `started <run id>` (or `idle`) on stdout and runs until it is killed.
import pino from 'pino';
import { openLifeline } from '../../src/lifecycle/engine.ts';
import { RUN_CRASH_STACK, runCrashConfig } from './run-crash.ts';

const [dataDir, db, action] = process.argv.slice(2);
if (!dataDir || !db || !action) throw new Error('usage: run-crash-child.ts DATA_DIR DB_URL ACTION');
process.stdin.on('close', () => process.exit(0)); // the test went away: so do we
process.stdin.resume();

const OPER = { name: 'crash-oper', role: 'operator' } as const;
const engine = await openLifeline({ config: runCrashConfig(dataDir, db), logger: pino({ level: 'error' }) });
await engine.start();
if (action === 'deploy') {
  try {
    await engine.getStack(RUN_CRASH_STACK.name);
  } catch {
    await engine.createStack(RUN_CRASH_STACK, OPER);
  }
  const run = await engine.startStackRun(RUN_CRASH_STACK.name, 'deploy', {}, OPER);
  process.stdout.write(`started ${run.id}\n`);
} else if (action === 'teardown') {
  const run = await engine.startStackRun(
    RUN_CRASH_STACK.name,
    'teardown',
    { confirm: RUN_CRASH_STACK.name },
    OPER,
  );
  process.stdout.write(`started ${run.id}\n`);
} else {
  process.stdout.write('idle\n');
}
