// The engine process of the crash test (test/lifecycle/crash.test.ts), run as
//   node --import tsx crash-child.ts DATA_DIR
// or as the bundle crashChildCommand() (crash.ts) makes of it, which loads much faster.
// It loads, says `loaded`, and waits for `open pause` or `open run` on stdin (so the test can warm
// it up while the previous engine still runs). Then it opens the engine on DATA_DIR and start()s it,
// which recovers what the last (killed) engine left. With `pause` it says `recovered` and waits for
// `go`, so the test can look at the state recovery produced. Then it acts at random, forever, until
// it is SIGKILLed: creates deployments, starts deploy and teardown attempts of the `crash` plan and of
// `crashv` (the same with a verifying check) and `crashr` (with automatic retry) with random params, cancels, resolves or force-deploys `unknown` ones, deletes a few.
// What it did is recorded only in the database. Its stderr carries nothing but errors.
import readline from 'node:readline';
import pino from 'pino';
import { LifelineError } from '../../src/domain/errors.ts';
import type { Actor } from '../../src/domain/types.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { crashConfig, randomCrashParams, RETRY_PLAN, VERIFIED_PLAN } from './crash.ts';

const OPER: Actor = { name: 'crash-oper', role: 'operator' };
const ADMIN: Actor = { name: 'crash-admin', role: 'admin' };
/** Refusals that only mean "another actor or the runner got there first". */
const RACES = new Set([
  'ATTEMPT_IN_PROGRESS',
  'DEPLOYMENT_UNKNOWN_STATE',
  'INVALID_TRANSITION',
  'ALREADY_TORN_DOWN',
  'NO_INFLIGHT_ATTEMPT',
  'ATTEMPT_TERMINAL',
  'DEPLOYMENT_EXISTS',
  'NOT_FOUND',
]);

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: crash-child.ts DATA_DIR');

const input = readline.createInterface({ input: process.stdin });
input.on('close', () => process.exit(0)); // the test went away: so do we
const lines = input[Symbol.asyncIterator]();
const nextLine = async (): Promise<string> => {
  const r = await lines.next();
  if (r.done) process.exit(0);
  return String(r.value);
};

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
const busy = (s: string) => s === 'deploying' || s === 'tearing_down';

function unexpected(what: string, err: unknown): void {
  if (err instanceof LifelineError && RACES.has(err.code)) return;
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`unexpected error in ${what}: ${text}\n`);
}

async function act(engine: Lifeline): Promise<void> {
  const deps = (await engine.listDeployments({ limit: 500 })).items;
  const idle = deps.filter((d) => !busy(d.state));
  const running = deps.filter((d) => busy(d.state));
  const r = Math.random();
  if (deps.length < 3 || (r < 0.1 && deps.length < 30)) {
    const name = `d-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    // The first three take one plan each, so every plan is there whatever the dice say later.
    const plans = ['crash', VERIFIED_PLAN, RETRY_PLAN];
    const p = Math.random();
    const plan =
      deps.length < plans.length
        ? plans[deps.length]
        : p < 0.35
          ? VERIFIED_PLAN
          : p < 0.6
            ? RETRY_PLAN
            : 'crash';
    await engine.createDeployment({ name, plan, params: randomCrashParams(plan) }, OPER);
    return;
  }
  if (r < 0.2 && running.length > 0) {
    await engine.cancel(pick(running).name, OPER);
    return;
  }
  if (idle.length === 0) return;
  const d = pick(idle);
  const r2 = Math.random();
  if (d.state === 'unknown') {
    if (r2 < 0.5) {
      const to = pick(['ready', 'failed', 'torn_down'] as const);
      await engine.resolve(d.name, { state: to, reason: 'crash test: looked at it' }, ADMIN);
    } else {
      await engine.startDeploy(d.name, { params: randomCrashParams(d.plan), force: true }, ADMIN);
    }
  } else if (d.state === 'torn_down' && r2 < 0.15) {
    await engine.deleteDeployment(d.name, {}, ADMIN);
  } else if (d.state !== 'torn_down' && r2 < 0.3) {
    await engine.teardown(d.name, { confirm: d.name }, OPER);
  } else {
    await engine.startDeploy(d.name, { params: randomCrashParams(d.plan) }, OPER);
  }
}

async function actor(engine: Lifeline): Promise<never> {
  for (;;) {
    try {
      await act(engine);
    } catch (err) {
      unexpected('act', err);
    }
    await sleep(5 + Math.random() * 60);
  }
}

process.stdout.write('loaded\n');
const mode = await nextLine();
// Engine errors go to stderr as JSON lines, so the test can tell what went wrong; nothing else does.
const logger = pino({ level: process.env.LIFELINE_CRASH_LOG ?? 'error' }, pino.destination(2));
const engine = await openLifeline({ config: crashConfig(dataDir), logger });
await engine.start();
if (mode === 'open pause') {
  process.stdout.write('recovered\n');
  await nextLine();
}
// Two actors, so requests also race each other inside the engine.
await Promise.all([actor(engine), actor(engine)]);
