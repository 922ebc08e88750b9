// What `npm pack` takes from examples/: the example's sources, never Python's bytecode cache, which
// running the Ansible example can leave in callback_plugins/__pycache__ (package.json `files`).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-files-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('packs the examples without __pycache__ or .pyc files', () => {
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
  fs.cpSync(path.join(ROOT, 'examples'), path.join(dir, 'examples'), { recursive: true });
  const cache = path.join(dir, 'examples/ansible/callback_plugins/__pycache__');
  fs.mkdirSync(cache, { recursive: true });
  fs.writeFileSync(path.join(cache, 'lifeline_events.cpython-311.pyc'), 'bytecode');
  fs.writeFileSync(path.join(dir, 'examples/ansible/stray.pyc'), 'bytecode');

  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false' },
    }),
  ) as { files: { path: string }[] }[];
  const files = packed.files.map((f) => f.path);
  expect(files).toContain('examples/ansible/callback_plugins/lifeline_events.py');
  expect(files).toContain('examples/lifeline.yaml');
  expect(files.filter((f) => f.includes('__pycache__') || f.endsWith('.pyc'))).toEqual([]);
});
