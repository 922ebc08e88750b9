// Vitest globalSetup of the "build" project (vitest.config.ts): compiles src/ to dist/ once per test run,
// before any worker starts, so the CLI and package tests run the JavaScript that ships instead of
// starting tsx for every command. Vitest calls it only when a test of that project is queued.
// The last build's hash of everything the build reads is kept beside dist/ (in a git-ignored dir, out of
// the package); when it matches, dist/ is already what a build would write and the build (several
// seconds before any test can start) is skipped. Any change to a source, the build script or the
// tsconfigs changes the hash, so a stale dist/ is never tested.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const STAMP = path.join(ROOT, '.lifeline-test-build', 'source-hash');
const INPUTS = [
  'src',
  'scripts/build.mjs',
  'scripts/bundle-options.mjs',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
];

function sourceHash(): string {
  const hash = createHash('sha256');
  const add = (rel: string) => {
    const file = path.join(ROOT, rel);
    if (!fs.existsSync(file)) return;
    if (fs.statSync(file).isDirectory()) {
      for (const name of fs.readdirSync(file).sort()) add(path.join(rel, name));
      return;
    }
    hash.update(`${rel}\0`).update(fs.readFileSync(file)).update('\0');
  };
  for (const input of INPUTS) add(input);
  return hash.digest('hex');
}

export default function setup(): void {
  const hash = sourceHash();
  const built = fs.existsSync(path.join(ROOT, 'dist/cli/main.js')) && fs.existsSync(STAMP);
  if (built && fs.readFileSync(STAMP, 'utf8') === hash) return;
  execFileSync(process.execPath, [path.join(ROOT, 'scripts/build.mjs'), '--no-check'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  fs.mkdirSync(path.dirname(STAMP), { recursive: true });
  fs.writeFileSync(STAMP, hash);
}
