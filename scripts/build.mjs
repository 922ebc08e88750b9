// `npm run build`: compiles src/ to dist/ (tsc -p tsconfig.build.json; relative imports are rewritten
// from .ts to .js) and copies the files tsc does not emit. Plain JavaScript, so it runs without tsx.
// `--no-check` emits the same files without type checking: the test suite's one build per run uses it
// (`npm run typecheck` is the check).
import { execFileSync } from 'node:child_process';
import { copyFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const args = ['-p', 'tsconfig.build.json', ...(process.argv.includes('--no-check') ? ['--noCheck'] : [])];

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
// Next to spawn.js and runner-client.js, which find them relative to themselves (as their sources do).
for (const file of ['supervisor.sh', 'runner.pl']) {
  copyFileSync(new URL(`../src/runner/${file}`, import.meta.url), new URL(`../dist/runner/${file}`, import.meta.url));
}
