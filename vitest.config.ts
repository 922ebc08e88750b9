import { defineConfig } from 'vitest/config';

/** Tests that run the compiled `lifeline` (dist/), built once per run by test/helpers/build.ts. */
const BUILT = [
  'test/cli/commands.test.ts',
  'test/cli/follow.test.ts',
  'test/cli/restart.test.ts',
  'test/cli/retry.test.ts',
  'test/cli/messages.test.ts',
  'test/package/**/*.test.ts',
];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real processes and real databases: keep parallelism to the machine's two cores.
    maxWorkers: 2,
    // CI also writes a JSON report, which .ci/run turns into one plain closing line.
    reporters: process.env.CI ? ['default', ['json', { outputFile: '.ci/results.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        // One throwaway PostgreSQL cluster per run for the suites parameterised over both stores.
        test: {
          name: 'source',
          include: ['test/**/*.test.ts'],
          exclude: BUILT,
          globalSetup: ['test/setup/postgres.ts'],
        },
      },
      { extends: true, test: { name: 'build', include: BUILT, globalSetup: ['test/helpers/build.ts'] } },
    ],
  },
});
