// The package as a user gets it (issue 12, item 7): `npm pack`, install the tarball into a temporary
// prefix the way `npm install -g` does, then run the installed `lifeline`: --version, `serve` against a
// temporary config until /v1/health answers, the dashboard from the packaged web/, and a deploy that
// needs the packaged supervisor script.
//
// dist/ is built once per run by this project's globalSetup (test/helpers/build.ts), so the pack skips
// its prepack build (--ignore-scripts): rebuilding dist/ here would pull it from under the CLI tests
// that run beside this one. The install prefers npm's cache (the tarballs are there after `npm ci`; only
// metadata npm did not keep is asked of the registry) and skips install scripts: the one native addon,
// better-sqlite3's, is copied from this checkout's node_modules (same pinned version, same Node)
// instead of being compiled again.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tempConfig, tempDir, writeConfigFile } from '../helpers/config.ts';
import { cleanEnv, freePort, waitFor } from '../cli/helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 600_000 });

const ROOT = path.resolve(import.meta.dirname, '../..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  scripts: Record<string, string>;
};
const PLANS = path.join(ROOT, 'test/fixtures/plans');

let dir: string;
let tarball: string;
let files: string[];
let installed: string;
let lifeline: string;
let server: ChildProcess | null = null;

const npm = (args: string[], cwd = ROOT) =>
  execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    env: cleanEnv({
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    }),
    timeout: 540_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

beforeAll(() => {
  dir = tempDir('lifeline-pack-');
  const [packed] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir])) as {
    filename: string;
    files: { path: string }[];
  }[];
  tarball = path.join(dir, packed.filename);
  files = packed.files.map((f) => f.path);

  const prefix = path.join(dir, 'prefix');
  npm(['install', '-g', '--prefix', prefix, '--prefer-offline', '--ignore-scripts', tarball], dir);
  installed = path.join(prefix, 'lib/node_modules', PKG.name);
  lifeline = path.join(prefix, 'bin/lifeline');
  const addon = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
  fs.mkdirSync(path.dirname(path.join(installed, addon)), { recursive: true });
  fs.copyFileSync(path.join(ROOT, addon), path.join(installed, addon));
});

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const gone = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await gone;
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the installed `lifeline` from outside the checkout, with only node on the PATH it inherits. */
function run(args: string[], env: Record<string, string> = {}) {
  return execFileSync(lifeline, args, { cwd: dir, encoding: 'utf8', env: cleanEnv(env), timeout: 120_000 });
}

describe('the packed and installed package', () => {
  it('ships the compiled code, the supervisor script, the dashboard and the examples, and no sources', () => {
    for (const f of [
      'bin/lifeline.js',
      'dist/cli/main.js',
      'dist/server.js',
      'dist/store/migrations/001_initial.js',
      'dist/runner/supervisor.sh',
      'dist/runner/runner.pl',
      'web/index.html',
      'examples/lifeline.yaml',
      'package.json',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /^(src|test|bench|scripts)\//.test(f) || f.endsWith('.ts'))).toEqual([]);
    // `npm pack` and `npm publish` build dist/ first.
    expect(PKG.scripts.prepack).toBe('npm run build');
  });

  it('installs without tsx: the bin runs the compiled JavaScript', () => {
    expect(fs.existsSync(path.join(installed, 'node_modules/tsx'))).toBe(false);
    expect(fs.existsSync(path.join(installed, 'src'))).toBe(false);
    expect(run(['--version']).trim()).toBe(PKG.version);
  });

  it('serves a temporary config: health, the dashboard, and a deploy run by the packaged supervisor', async () => {
    const home = tempDir('lifeline-pack-home-');
    const port = await freePort();
    const config = writeConfigFile(
      home,
      tempConfig(home, {
        plans: { ok: { deploy: [path.join(PLANS, 'ok.sh')], teardown: [path.join(PLANS, 'ok.sh')] } },
        extra: { server: { host: '127.0.0.1', port } },
      }),
    );
    let log = '';
    server = spawn(lifeline, ['serve', '--config', config], {
      cwd: home,
      env: cleanEnv({ LIFELINE_LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout!.setEncoding('utf8').on('data', (s: string) => (log += s));
    server.stderr!.setEncoding('utf8').on('data', (s: string) => (log += s));
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (server!.exitCode !== null) throw new Error(`lifeline serve exited:\n${log}`);
        return (await fetch(`${url}/v1/health`).catch(() => null))?.ok === true;
      },
      'the installed server to answer /v1/health',
      60_000,
    );

    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);

    run(['create', 'pkg-1', '--plan', 'ok'], { LIFELINE_URL: url });
    const out = run(['deploy', 'pkg-1', '--follow'], { LIFELINE_URL: url });
    expect(out).toMatch(/result: succeeded {2}rc=0/);
    expect(out).toMatch(/deploying pkg-1 attempt 1 \(deploy\)/);
    fs.rmSync(home, { recursive: true, force: true });
  });
});
