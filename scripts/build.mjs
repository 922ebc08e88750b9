// `npm run build`: compiles src/ to dist/ (tsc -p tsconfig.build.json; relative imports are rewritten
// from .ts to .js), copies the files tsc does not emit, then bundles the `lifeline` executable.
// Plain JavaScript, so it runs without tsx.
// `--no-check` emits the same files without type checking: the test suite's one build per run uses it
// (`npm run typecheck` is the check).
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { EXTERNAL, REQUIRE_BANNER } from './bundle-options.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = path.join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const args = ['-p', 'tsconfig.build.json', ...(process.argv.includes('--no-check') ? ['--noCheck'] : [])];

rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, ...args], { cwd: root, stdio: 'inherit' });
// Next to spawn.js and runner-client.js, which find them relative to themselves (as their sources do).
for (const file of ['supervisor.sh', 'runner.pl']) {
  copyFileSync(path.join(root, 'src/runner', file), path.join(dist, 'runner', file));
}

// dist/cli/main.js becomes one bundle with its dependencies, plus one chunk that only `serve` loads (the
// server is a dynamic import). Unbundled, every start of the executable had Node's module loader resolve,
// read and compile about 1,000 files: a `lifeline serve` start took about 1.9 s of CPU, now 1.2 s
// (docs/performance.md, "Start"). esbuild.build throws on an error. The other files of dist/ stay as tsc wrote them.
const out = path.join(dist, '.bundle');
await esbuild.build({
  entryPoints: { main: path.join(dist, 'cli/main.js') },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  logLevel: 'warning',
  banner: { js: REQUIRE_BANNER },
  plugins: [ownLocations()],
});
rmSync(path.join(dist, 'cli/main.js'));
for (const file of readdirSync(out)) {
  const text = readFileSync(path.join(out, file), 'utf8');
  // A bundled package that finds a file through __dirname or __filename would look beside the bundle.
  const line = text.split('\n').find((l) => /\b__(dirname|filename)\b/.test(l) && !/^\s*(\*|\/\/)/.test(l));
  if (line)
    throw new Error(`build: ${file} uses ${line.trim()}; keep its package out of the bundle (EXTERNAL)`);
  renameSync(path.join(out, file), path.join(dist, 'cli', file));
}
rmSync(out, { recursive: true });

/**
 * Our modules locate files relative to themselves (runner.pl, supervisor.sh, web/, package.json). In the
 * bundle, import.meta is the bundle's (dist/cli/), so each module's import.meta.url and import.meta.dirname
 * are rewritten to its own place in dist/, relative to the bundle: the installed package can live anywhere.
 */
function ownLocations() {
  return {
    name: 'own-locations',
    setup(build) {
      build.onLoad({ filter: /\.js$/ }, (args) => {
        if (!args.path.startsWith(dist + path.sep)) return undefined;
        const rel = path.relative(path.join(dist, 'cli'), args.path).split(path.sep).join('/');
        const text = readFileSync(args.path, 'utf8')
          .replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`)
          .replaceAll(
            'import.meta.dirname',
            `(import.meta.dirname + ${JSON.stringify(`/${path.posix.dirname(rel)}`)})`,
          );
        return { contents: text, loader: 'js' };
      });
    },
  };
}
