// The suite's two sizes. By default the model-based, fuzz and crash tests run meaningful but smaller
// counts, so `npm test` stays within minutes; LIFELINE_TEST_FULL=1 (which .ci/run runs after the suite)
// runs the long soaks. What each count is in each mode: docs/reliability.md, "Test suite".
export const FULL = process.env.LIFELINE_TEST_FULL === '1';

/** `normal` in the default suite, `full` under LIFELINE_TEST_FULL=1. */
export function scaled(normal: number, full: number): number {
  return FULL ? full : normal;
}
