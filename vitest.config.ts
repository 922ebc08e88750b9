import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const ROOT = path.dirname(fileURLToPath(import.meta.url));

/**
 * Tests that run the compiled `lifeline` (dist/), built once per run by test/helpers/build.ts: the
 * package test and every file that imports test/cli/helpers.ts (whose BIN is dist/cli/main.js). Found
 * by reading the files, so a new one cannot be left out and run a missing or stale dist/.
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
        (f.startsWith('test/cli/') && /from '\.\/helpers\.ts'/.test(text))
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

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real processes and real databases: most test time is spent waiting on them (plans, timers, the
    // database), so three workers keep the two cores busy where two left one idle half of the time.
    maxWorkers: 3,
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
      { extends: true, test: { name: 'build', include: BUILT, globalSetup: ['test/helpers/build.ts'] } },
    ],
  },
});
