// Shared by the crash test and its child engine (crash-child.ts): the `crash` plan, the engine
// config, the random params of an attempt, and the output those params make the plan print.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EXTERNAL, REQUIRE_BANNER } from '../../scripts/bundle-options.mjs';
import type { LifelineConfig } from '../../src/config/types.ts';
import { FIXTURES, fixturePlans, testConfig } from './engine.ts';

export const CRASH_CHILD = path.resolve(import.meta.dirname, 'crash-child.ts');
const REPO = path.resolve(import.meta.dirname, '../..');

export interface ChildCommand {
  args: string[];
  dispose(): void;
}

/**
 * How to run crash-child.ts (or another child script: `entry`). Under tsx every one of the ~1,000
 * modules it loads (kysely alone has hundreds) goes through the loader hooks' thread, and a child takes
 * 2–4 s to load on a busy 2-core machine; the tests start dozens. So the child is bundled once with
 * esbuild (tsx's own compiler), its dependencies with it as in the `lifeline` build (but for the same
 * EXTERNAL packages), each file's import.meta.url/dirname kept as its own (the supervisor script and
 * the fixtures are found next to their sources). The bundle sits under node_modules/.cache so its bare
 * imports resolve. Its source map has positions only, no sources: a child's stack still names the
 * source lines, and loading the map costs 0.2 s instead of 0.5 s per child (0.45 s without a map,
 * 1 s with node_modules external and the sources in the map). Without esbuild: tsx.
 */
export async function crashChildCommand(entry = CRASH_CHILD): Promise<ChildCommand> {
  const tsx: ChildCommand = { args: ['--import', 'tsx', entry], dispose: () => undefined };
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    return tsx;
  }
  const dir = path.join(REPO, 'node_modules', '.cache', 'lifeline-crash-test');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `child-${process.pid}-${Date.now()}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile: file,
    bundle: true,
    external: EXTERNAL,
    banner: { js: REQUIRE_BANNER },
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    sourcesContent: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'own-import-meta',
        setup(build) {
          build.onLoad({ filter: /\.ts$/ }, (args) => ({
            loader: 'ts',
            contents: fs
              .readFileSync(args.path, 'utf8')
              .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href))
              .replaceAll('import.meta.dirname', JSON.stringify(path.dirname(args.path))),
          }));
        },
      },
    ],
  });
  return {
    args: ['--enable-source-maps', file],
    dispose: () => fs.rmSync(file, { force: true }),
  };
}

/**
 * `lines` numbered lines around a sleep of `sleep` seconds, then exit `rc` (fixtures/plans/crash.sh).
 * On the `crashv` plan also the verifying check's: it sleeps `check_sleep` seconds and exits `check_rc`
 * (fixtures/plans/crash-check.sh).
 */
export interface CrashParams {
  lines: number;
  sleep: number;
  rc: number;
  check_rc?: number;
  check_sleep?: number;
}

/** Long sleepers (3–7 s) outlive a restart or two; some of them hit the 6 s timeout. */
export const LONG_SLEEP = 3;

/** The plan with a verifying check (SPEC §9.3): deploys need the check's `up`, teardowns its `absent`. */
export const VERIFIED_PLAN = 'crashv';

/**
 * The plan with automatic retry (SPEC §9.1): `crash` retried up to RETRY_MAX times, with a backoff short
 * enough that retries fall due, start and fail again while engines come and go.
 */
export const RETRY_PLAN = 'crashr';
export const RETRY_MAX = 2;

export function crashPlans(): Record<string, unknown> {
  const script = [path.join(FIXTURES, 'crash.sh')];
  const properties = {
    lines: { type: 'integer', minimum: 0, maximum: 5000 },
    sleep: { type: 'number', minimum: 0, maximum: 60 },
    rc: { type: 'integer', minimum: 0, maximum: 125 },
  };
  const crash = {
    deploy: script,
    teardown: script,
    timeout: '6s',
    cancel_grace: '300ms',
    params: { type: 'object', properties, required: ['lines', 'sleep', 'rc'], additionalProperties: false },
  };
  return {
    crash,
    [RETRY_PLAN]: { ...crash, retry: { max: RETRY_MAX, backoff: '200ms' } },
    [VERIFIED_PLAN]: {
      ...crash,
      check: [path.join(FIXTURES, 'crash-check.sh')],
      params: {
        ...crash.params,
        properties: {
          ...properties,
          check_rc: { type: 'integer', minimum: 0, maximum: 125 },
          check_sleep: { type: 'number', minimum: 0, maximum: 60 },
        },
        required: ['lines', 'sleep', 'rc', 'check_rc', 'check_sleep'],
      },
    },
  };
}

export function crashConfig(dir: string): LifelineConfig {
  // A short reap interval so periodic reconciles run alongside the watcher, as in production; commits
  // as durable as production's (the test's other suites relax them).
  return testConfig(dir, {
    plans: { ...fixturePlans(), ...crashPlans() },
    reap_interval: '1s',
    durable_commits: true,
  });
}

const int = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const tenths = (lo: number, hi: number) => Math.round((lo + Math.random() * (hi - lo)) * 10) / 10;

function randomPlanParams(): CrashParams {
  const r = Math.random();
  if (r < 0.12) return { lines: int(1, 6), sleep: tenths(LONG_SLEEP, 7), rc: 0 }; // long sleeper
  if (r < 0.32) return { lines: int(200, 800), sleep: tenths(0.1, 1), rc: int(0, 1) }; // chatty
  if (r < 0.55) return { lines: int(0, 20), sleep: tenths(0.1, 2), rc: int(1, 3) }; // fails
  return { lines: int(0, 20), sleep: tenths(0.1, 2), rc: 0 };
}

/**
 * Params for a `plan` attempt; the verified plan's check says up, absent or failed, slowly enough to be
 * hit; the retry plan's attempts fail more often.
 */
export function randomCrashParams(plan = 'crash'): CrashParams {
  const p = randomPlanParams();
  // The retry plan fails more often, so retry chains run (and exhaust) during the cycles.
  if (plan === RETRY_PLAN && Math.random() < 0.4) return { ...p, rc: int(1, 3) };
  if (plan !== VERIFIED_PLAN) return p;
  return { ...p, check_rc: [0, 0, 3, 1][int(0, 3)], check_sleep: tenths(0.1, 1.5) };
}

/** What crash.sh prints for these params when it runs to its end. */
export function expectedOutput(p: CrashParams): { stdout: string[]; stderr: string[] } {
  const stdout = Array.from({ length: p.lines }, (_, i) => `line ${i + 1}`);
  return { stdout, stderr: [`half ${Math.floor(p.lines / 2)}`, `done ${p.lines}`] };
}
