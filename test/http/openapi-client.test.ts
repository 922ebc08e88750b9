// A typed client generated from the served /openapi.json (openapi-typescript + openapi-fetch) compiles
// with tsc under strict settings and works against a real server: create, deploy, read events, and a
// problem whose `code` is a typed union.
import { execFile } from 'node:child_process';
import { copyFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import openapiTS, { astToString } from 'openapi-typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/engine.ts';
import { harness, TOKENS, type Harness } from './helpers.ts';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const ROOT = path.resolve(import.meta.dirname, '../..');
const TSC = require.resolve('typescript/bin/tsc');
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');

let h: Harness;
let base: string;
let dir: string;
beforeAll(async () => {
  h = await harness({ auth: true });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  // A project of its own: the generated types, the program, strict tsc settings; packages from ours.
  dir = tempDir('lifeline-client-');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  copyFileSync(path.join(import.meta.dirname, 'fixtures/typed-client.ts.txt'), path.join(dir, 'client.ts'));
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        allowImportingTsExtensions: true,
        skipLibCheck: true,
        types: ['node'],
      },
      files: ['client.ts'],
    }),
  );
});
afterAll(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true }); // removes the node_modules link, not its target
});

describe('a client generated from /openapi.json', () => {
  it('generates, typechecks and runs: create, deploy, events, a typed problem code', async () => {
    const ast = await openapiTS(new URL(`${base}/openapi.json`));
    const types = astToString(ast);
    expect(types).toContain('"/v1/deployments/{ref}/events"');
    writeFileSync(path.join(dir, 'api.ts'), types);

    // tsc exits non-zero on any type error, including an unused @ts-expect-error: the integer
    // query params and the code union must be as typed as the program assumes.
    const tsc = await run(process.execPath, [TSC, '-p', dir], { cwd: dir }).catch(
      (err: { stdout?: string; code?: number }) => ({
        stdout: `exit ${err.code}\n${err.stdout}`,
        stderr: '',
      }),
    );
    expect(tsc.stdout).toBe('');

    const { stdout } = await run(process.execPath, [TSX, path.join(dir, 'client.ts')], {
      cwd: dir,
      env: {
        ...process.env,
        LIFELINE_URL: base,
        LIFELINE_TOKEN: TOKENS.operator,
        DEPLOYMENT_NAME: 'typed-1',
      },
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({
      created: 'pending',
      attempt: 1,
      status: 409,
      code: 'DEPLOYMENT_EXISTS',
      final: 'ready',
    });
    expect(out.types).toEqual(
      expect.arrayContaining(['deployment_created', 'state_transition', 'attempt_start', 'attempt_end']),
    );
    expect(out.after).toBeGreaterThan(0);
  }, 180_000);
});
