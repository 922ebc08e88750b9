import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const ROOT = path.dirname(fileURLToPath(import.meta.url));

/** Every test file, relative to the root with forward slashes, sorted; and a file's text. */
const TEST_FILES = fs
  .readdirSync(path.join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => path.join('test', f).split(path.sep).join('/'))
  .sort();
const source = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

/**
 * Tests that run the compiled `lifeline` (dist/), built once per run by test/helpers/build.ts: the
 * package test, every file that imports test/cli/helpers.ts (whose BIN is dist/cli/main.js), and every
 * file that starts `lifeline` through test/helpers/lifeline-bin.ts, directly or through
 * test/helpers/servers.ts or test/e2e/server.ts (dist/ when LIFELINE_TEST_DIST=1, as it is there), and every
 * file that runs chaos/run.ts (its servers come from test/helpers/servers.ts too). Found by reading the files, so a new one cannot
 * be left out and run a missing or stale dist/.
 */
function builtTests(): string[] {
  return TEST_FILES.filter((f) => {
    if (f.startsWith('test/package/')) return true;
    const text = source(f);
    return (
      /from '\.\.\/cli\/helpers\.ts'/.test(text) ||
      (f.startsWith('test/cli/') && /from '\.\/helpers\.ts'/.test(text)) ||
      /from '\.\.\/helpers\/(servers|lifeline-bin)\.ts'/.test(text) ||
      /from '\.\.\/e2e\/server\.ts'/.test(text) ||
      /'chaos\/run\.ts'/.test(text) ||
      (f.startsWith('test/e2e/') && /from '\.\/server\.ts'/.test(text))
    );
  });
}
const BUILT = builtTests();

/**
 * Pure suites: no processes, servers or databases, no module mocks. They share one worker process
 * (isolate: false) instead of paying a fresh module graph per file.
 */
const PURE = [
  'test/domain/**/*.test.ts',
  'test/web/**/*.test.ts',
  'test/config/**/*.test.ts',
  'test/docs/**/*.test.ts',
  'test/cli/unit.test.ts',
  'test/store/errors.test.ts',
];

/**
 * Suites that change what their modules hold for the whole file: durable commits for every engine
 * (keepDurableCommits(), test/helpers/config.ts) or a module mock. Each runs in a fresh worker. Found by
 * reading the files, like the built ones.
 */
function isolatedTests(): string[] {
  return TEST_FILES.filter((f) => /keepDurableCommits\(\)|vi\.mock\(/.test(source(f)));
}
const ISOLATED = isolatedTests();
const builtAndIsolated = ISOLATED.filter((f) => BUILT.includes(f));
if (builtAndIsolated.length > 0)
  throw new Error(
    `${builtAndIsolated.join(', ')}: the build project shares its workers; pass durable_commits: true in the config instead`,
  );

/**
 * The files that took longest in a quiet run of the whole suite on the 2-core machine (7 Dec 17:30;
 * seconds). They start first, so the run does not end waiting on one that began last (that run ended
 * with the 33 s webhooks file started among the last); the short ones fill in around them. A file not
 * listed keeps vitest's own order (its last duration when cached, else its size) after these.
 */
const SLOWEST = [
  'test/lifecycle/run-crash.test.ts', // 71
  'test/lifecycle/retention.test.ts', // 54
  'test/chaos/run.test.ts', // 53
  'test/lifecycle/drift.test.ts', // 48
  'test/http/fuzz.test.ts', // 47
  'test/lifecycle/clock-skew.test.ts', // 47
  'test/package/pack.test.ts', // 45
  'test/scale/instances.test.ts', // 45
  'test/e2e/dashboard.test.ts', // 40
  'test/scale/gates-faults.test.ts', // 39
  'test/e2e/stacks.test.ts', // 38
  'test/lifecycle/model.test.ts', // 36
  'test/examples/ansible.test.ts', // 36
  'test/e2e/live-and-narrow.test.ts', // 36
  'test/http/retry.test.ts', // 35
  'test/e2e/gates.test.ts', // 35
  'test/lifecycle/crash.test.ts', // 33
  'test/e2e/auth.test.ts', // 32
  'test/http/webhooks.test.ts', // 32
  'test/lifecycle/scale.test.ts', // 32
  'test/http/stream.test.ts', // 31
  'test/cli/restart.test.ts', // 28
  'test/cli/stack-run.test.ts', // 28
  'test/lifecycle/group-leftovers.test.ts', // 27
  'test/http/idempotent-crash.test.ts', // 23
  'test/e2e/stack-drift.test.ts', // 21
  'test/lifecycle/gates.test.ts', // 20
  'test/scale/outage.test.ts', // 19
  'test/lifecycle/attempts.test.ts', // 18
  'test/lifecycle/retry.test.ts', // 18
  'test/e2e/retry.test.ts', // 17
  'test/lifecycle/outputs.test.ts', // 16
  'test/e2e/drift.test.ts', // 16
  'test/cli/follow.test.ts', // 16
  'test/http/serve.test.ts', // 15
  'test/lifecycle/lapse-mid-round.test.ts', // 14
  'test/http/outage.test.ts', // 13
  'test/lifecycle/model-gates.test.ts', // 13
  'test/lifecycle/start-lease.test.ts', // 13
  'test/cli/commands.test.ts', // 13
  'test/lifecycle/slow-start.test.ts', // 12
  'test/cli/gates.test.ts', // 11
  'test/lifecycle/crash-start.test.ts', // 11
  'test/scale/clock-skew.test.ts', // 10
  'test/scale/datadir-lock.test.ts', // 10
];

/**
 * Slowest first across the projects (vitest would run them project by project: every CLI file first,
 * the long lifecycle ones last); the pure files stay next to each other, and so do the shared ones, so
 * they keep reusing their workers.
 */
class SlowestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rel = (f: TestSpecification) => path.relative(ROOT, f.moduleId).split(path.sep).join('/');
    const rank = (f: TestSpecification) => {
      const i = SLOWEST.indexOf(rel(f));
      return i < 0 ? SLOWEST.length : i;
    };
    const slow = sorted.filter((f) => rank(f) < SLOWEST.length).sort((a, b) => rank(a) - rank(b));
    const unranked = (name: string) =>
      sorted.filter((f) => rank(f) === SLOWEST.length && f.project.name === name);
    const rest = sorted.filter(
      (f) => rank(f) === SLOWEST.length && f.project.name !== 'pure' && f.project.name !== 'shared',
    );
    return [...slow, ...unranked('pure'), ...unranked('shared'), ...rest];
  }
}

const REPORT = process.env.LIFELINE_TEST_FULL === '1' ? 'results-full' : 'results';

export default defineConfig({
  test: {
    pool: 'forks',
    // LIFELINE_TEST_CPU_PROF=<dir>: a V8 CPU profile of each test worker, written there when it exits
    // (docs/reliability.md, "Where the suite's time goes").
    execArgv: process.env.LIFELINE_TEST_CPU_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LIFELINE_TEST_CPU_PROF}`, '--cpu-prof-interval', '2000']
      : [],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real processes and real databases: most test time is spent waiting on them (plans, timers, the
    // database), so three workers keep the two cores busy where two left one idle half of the time.
    maxWorkers: 3,
    sequence: { sequencer: SlowestFirst },
    // CI also writes a JSON report, which .ci/run turns into one plain closing line.
    // The full mode (LIFELINE_TEST_FULL=1, run after the suite) reports beside it, not over it.
    reporters: process.env.CI
      ? [
          'default',
          ['json', { outputFile: `.ci/${REPORT}.json` }],
          [path.join(ROOT, 'test/setup/run-end-reporter.ts'), { outputFile: `.ci/${REPORT}-end.json` }],
        ]
      : ['default'],
    projects: [
      {
        extends: true,
        // The isolated suites (durable commits, a module mock): a fresh worker per file. One throwaway
        // PostgreSQL cluster per run for the suites parameterised over both stores, in each project.
        test: {
          name: 'source',
          include: ISOLATED,
          globalSetup: ['test/setup/postgres.ts', 'test/setup/sqlite-template.ts'],
        },
      },
      {
        extends: true,
        // Every other suite shares worker processes (isolate: false) like the pure ones: each file in a
        // fresh worker paid about 1.7 s of CPU to load the engine, the app, Playwright and their
        // dependencies again. They keep no state between files that another reads: every engine, app,
        // server and browser is their own, and vitest resets vi.setConfig and mocks between files.
        test: {
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: [...BUILT, ...PURE, ...ISOLATED],
          isolate: false,
          globalSetup: ['test/setup/postgres.ts', 'test/setup/sqlite-template.ts'],
        },
      },
      { extends: true, test: { name: 'pure', include: PURE, isolate: false } },
      {
        extends: true,
        // Multi-instance tests here use PostgreSQL too: this project starts its own cluster after the build.
        // Its files share workers too (no file here may keep durable commits or mock a module).
        test: {
          name: 'build',
          include: BUILT,
          isolate: false,
          globalSetup: ['test/helpers/build.ts', 'test/setup/postgres.ts', 'test/setup/sqlite-template.ts'],
          env: { LIFELINE_TEST_DIST: '1' },
        },
      },
    ],
  },
});
