import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readExit } from '../../src/runner/rundir.ts';
import { resolveExecutable, spawnSupervisor } from '../../src/runner/spawn.ts';
import { removeTempDirs, tempDir, waitFor } from './helpers.ts';

afterEach(removeTempDirs);

function fixture() {
  const root = tempDir();
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'bin', 'adir'));
  writeFileSync(join(root, 'bin', 'tool'), '#!/bin/sh\n');
  chmodSync(join(root, 'bin', 'tool'), 0o755);
  writeFileSync(join(root, 'bin', 'noexec'), '#!/bin/sh\n');
  chmodSync(join(root, 'bin', 'noexec'), 0o644);
  return root;
}

describe('resolveExecutable', () => {
  it('searches PATH for a bare name', () => {
    const root = fixture();
    expect(resolveExecutable('tool', `/nonexistent:${root}/bin`)).toBe(join(root, 'bin', 'tool'));
    expect(resolveExecutable('sh', '/usr/bin:/bin')).toMatch(/\/sh$/);
    expect(resolveExecutable('nope-not-here', `${root}/bin:/usr/bin`)).toBeNull();
    expect(resolveExecutable('adir', `${root}/bin`)).toBeNull();
    // An empty PATH entry is the cwd, as for execvp; an unset PATH is /bin:/usr/bin.
    expect(resolveExecutable('tool', '', join(root, 'bin'))).toBe(join(root, 'bin', 'tool'));
    expect(resolveExecutable('sh', undefined)).toMatch(/^\/(usr\/)?bin\/sh$/);
  });

  it('takes a name with a slash as a path, relative to cwd', () => {
    const root = fixture();
    expect(resolveExecutable('./bin/tool', '', root)).toBe(join(root, 'bin', 'tool'));
    expect(resolveExecutable(join(root, 'bin', 'tool'), '')).toBe(join(root, 'bin', 'tool'));
    expect(resolveExecutable('./bin/tool', '/usr/bin', '/')).toBeNull();
    expect(resolveExecutable('./bin/adir', '', root)).toBeNull();
    expect(resolveExecutable('', '/usr/bin')).toBeNull();
    expect(resolveExecutable('/bin/sh\0x', '/usr/bin')).toBeNull();
  });

  it('refuses a file without any execute bit (even for root)', () => {
    const root = fixture();
    expect(resolveExecutable('noexec', `${root}/bin`)).toBeNull();
  });
});

describe('spawnSupervisor', () => {
  it('creates the run dir, absolute even when given relative', async () => {
    const base = tempDir();
    const rel = join(base, 'a', 'b', '..', 'b', 'run');
    const child = spawnSupervisor({ dir: rel, argv: ['true'], env: process.env, cwd: tempDir() });
    expect(child.pid).toBeGreaterThan(1);
    expect(await waitFor(() => readExit(join(base, 'a', 'b', 'run')), 'exit record')).toMatchObject({
      rc: 0,
    });
  });

  it('refuses an empty argv', () => {
    expect(() => spawnSupervisor({ dir: tempDir(), argv: [], env: {}, cwd: '/' })).toThrow(/empty argv/);
  });
});
