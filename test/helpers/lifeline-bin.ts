// The `lifeline` a test starts as a process (`serve` for multi-instance and browser tests). In vitest's
// "build" project (vitest.config.ts sets LIFELINE_TEST_DIST=1 there) it is the compiled dist/, built once
// per run from the same sources (test/helpers/build.ts): starting tsx cost each server about twice the
// CPU. Elsewhere (the chaos run, scripts) it is the sources through tsx.
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Node arguments that run `lifeline` (append the command and its arguments). */
export function lifelineArgv(): string[] {
  if (process.env.LIFELINE_TEST_DIST !== '1') return ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts')];
  const bin = path.join(ROOT, 'dist/cli/main.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: vitest's "build" project builds it first`);
  return [bin];
}
