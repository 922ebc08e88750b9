#!/usr/bin/env node
// Launcher for an installed `lifeline` and for `npx lifeline` in a checkout.
//
// An installed package has no src/: it runs the compiled JavaScript in dist/ (`npm run build`, done by
// `npm pack` through prepack). In a git checkout (src/ present and tsx installed as a dev dependency) it
// runs the TypeScript sources through tsx instead, so a dist/ left over from an older build never runs
// stale code; dist/ is used there only when tsx is absent.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = new URL('../', import.meta.url);
const source = new URL('src/cli/main.ts', root);
const compiled = new URL('dist/cli/main.js', root);

async function tsx() {
  try {
    return await import('tsx/esm/api');
  } catch {
    return null;
  }
}

const dev = existsSync(source) ? await tsx() : null;
if (dev) {
  dev.register();
  await import(source.href);
} else if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  process.stderr.write(`lifeline: ${fileURLToPath(compiled)} is missing; run \`npm run build\` first\n`);
  process.exit(1);
}
