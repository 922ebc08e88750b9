// Vitest globalSetup of the "build" project (vitest.config.ts): compiles src/ to dist/ once per test run,
// before any worker starts, so the CLI and package tests run the JavaScript that ships instead of
// starting tsx for every command. Vitest calls it only when a test of that project is queued.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export default function setup(): void {
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--no-check'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
}
