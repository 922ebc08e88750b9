import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const ROOT = path.dirname(fileURLToPath(import.meta.url));

/**
 * Tests that run the compiled `lifeline` (dist/), built once per run by test/helpers/build.ts: the
 * package test, every file that imports test/cli/helpers.ts (whose BIN is dist/cli/main.js), and every
 * file that starts `lifeline` through test/helpers/lifeline-bin.ts, directly or through
 * test/helpers/servers.ts or test/e2e/server.ts (dist/ when LIFELINE_TEST_DIST=1, as it is there). Found by reading the files, so a new one cannot
 * be left out and run a missing or stale dist/.
 */
function builtTests(): string[] {
  const files = fs.readdirSync(path.join(ROOT, 'test'), { recursive: true, encoding: 'utf8' });
  return files
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join('test', f).split(path.sep).join('/'))
    .filter((f) => {
      if (f.startsWith('test/package/')) return true;
      const text = fs.readFileSync(path.join(ROOT, f), 'utf8');
      return (
        /from '\.\.\/cli\/helpers\.ts'/.test(text) ||
        (f.startsWith('test/cli/') && /from '\.\/helpers\.ts'/.test(text)) ||
        /from '\.\.\/helpers\/(servers|lifeline-bin)\.ts'/.test(text) ||
        /from '\.\.\/e2e\/server\.ts'/.test(text) ||
        (f.startsWith('test/e2e/') && /from '\.\/server\.ts'/.test(text))
      );
    })
    .sort();
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
 * The files that took longest in a CI-mode run on the 2-core machine (slowest first; a loaded run, and
 * before model-gates stopped hanging on a lapsed lease). They start first, so the run does not end
 * waiting on one that began last; the short ones fill in around them. A file not listed keeps vitest's
 * own order (its last duration when cached, else its size) after these.
 */
const SLOWEST = [
  'test/lifecycle/model-gates.test.ts',
  'test/http/retry.test.ts',
  'test/scale/instances.test.ts',
  'test/lifecycle/retention.test.ts',
  'test/lifecycle/scale.test.ts',
  'test/lifecycle/run-crash.test.ts',
  'test/chaos/run.test.ts',
  'test/http/stream.test.ts',
  'test/http/fuzz.test.ts',
  'test/scale/datadir-lock.test.ts',
  'test/cli/approve.test.ts',
  'test/lifecycle/crash-verify.test.ts',
  'test/lifecycle/model.test.ts',
  'test/lifecycle/crash.test.ts',
  'test/scale/gates.test.ts',
  'test/cli/restart.test.ts',
  'test/cli/rollback.test.ts',
  'test/scale/clock-skew.test.ts',
  'test/cli/stop.test.ts',
  'test/cli/freeze.test.ts',
  'test/scale/outage.test.ts',
  'test/lifecycle/drift.test.ts',
  'test/http/serve.test.ts',
  'test/http/openapi-client.test.ts',
  'test/http/outage.test.ts',
];

/**
 * Slowest first across the three projects (vitest would run them project by project: every CLI file
 * first, the long lifecycle ones last); the pure files stay next to each other, so they keep sharing
 * their one worker.
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
    const pure = sorted.filter((f) => rank(f) === SLOWEST.length && f.project.name === 'pure');
    const rest = sorted.filter((f) => rank(f) === SLOWEST.length && f.project.name !== 'pure');
    return [...slow, ...pure, ...rest];
  }
}

export default defineConfig({
  test: {
    pool: 'forks',
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
          [
            'json',
            {
              outputFile:
                process.env.LIFELINE_TEST_FULL === '1' ? '.ci/results-full.json' : '.ci/results.json',
            },
          ],
        ]
      : ['default'],
    projects: [
      {
        extends: true,
        // One throwaway PostgreSQL cluster per run for the suites parameterised over both stores.
        test: {
          name: 'source',
          include: ['test/**/*.test.ts'],
          exclude: [...BUILT, ...PURE],
          globalSetup: ['test/setup/postgres.ts'],
        },
      },
      { extends: true, test: { name: 'pure', include: PURE, isolate: false } },
      {
        extends: true,
        // Multi-instance tests here use PostgreSQL too: this project starts its own cluster after the build.
        test: {
          name: 'build',
          include: BUILT,
          globalSetup: ['test/helpers/build.ts', 'test/setup/postgres.ts'],
          env: { LIFELINE_TEST_DIST: '1' },
        },
      },
    ],
  },
});
