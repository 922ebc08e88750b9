// The Ansible example (examples/ansible) through a real server and the real CLI: ansible-playbook deploys
// a small site into the workspace, its check says up, every task is a phase with a duration in the API and
// in `lifeline show`, and teardown removes the site. Needs ansible-playbook (.ci/run installs it).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, ROOT, TestServer } from '../cli/helpers.ts';

vi.setConfig({ testTimeout: 570_000, hookTimeout: 120_000 });

const run = path.join(ROOT, 'examples/ansible/run.sh');
const pycache = path.join(ROOT, 'examples/ansible/callback_plugins/__pycache__');
let server: TestServer;

beforeAll(async () => {
  fs.rmSync(pycache, { recursive: true, force: true }); // Python's cache, git-ignored; run.sh must not write it
  server = await TestServer.start({
    'ansible-demo': {
      deploy: [run, 'deploy'],
      teardown: [run, 'teardown'],
      check: [run, 'check'],
      timeout: '8m',
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

const TASKS = [
  'Create the site folder',
  'Render the home page',
  'Write the release marker',
  'Verify the page is served from disk',
  "Publish the site's outputs",
];

describe('examples/ansible', () => {
  it('deploys a site, reports each task as a phase, checks up, and tears it down', async () => {
    const c = await cli(server, ['create', 'site-1', '--plan', 'ansible-demo', '--param', 'release=7']);
    expect(c.code, c.stderr).toBe(0);
    const d = await cli(server, ['deploy', 'site-1', '--follow']);
    expect(d.code, d.stdout + d.stderr).toBe(0);

    const dep = await server.api<any>('GET', '/v1/deployments/site-1');
    expect(dep.state).toBe('ready');
    const site = path.join(server.dataDir, 'workspaces', dep.id, 'site');
    expect(fs.readFileSync(path.join(site, 'index.html'), 'utf8')).toContain('Release 7');
    expect(JSON.parse(fs.readFileSync(path.join(site, 'release.json'), 'utf8'))).toEqual({
      release: '7',
      deployment: 'site-1',
    });

    // The playbook published where the site is (SPEC §12.1): the deployment's outputs, and in `show`.
    expect(dep.outputs).toEqual({ site_dir: site, url: `file://${site}/index.html`, release: '7' });

    const { items } = await server.api<{ items: any[] }>(
      'GET',
      `/v1/attempts/${dep.current_attempt.id}/phases`,
    );
    expect(items.map((p) => p.phase)).toEqual(TASKS);
    for (const p of items) {
      expect(p.duration_ms).toEqual(expect.any(Number));
      expect(p.duration_ms).toBeGreaterThan(0);
      expect(Date.parse(p.ended_at) - Date.parse(p.started_at)).toBe(p.duration_ms);
    }

    const show = await cli(server, ['show', 'site-1']);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/^Phases of attempt #1$/m);
    for (const t of TASKS) expect(show.stdout).toMatch(new RegExp(`^ {2}${t} +\\S+ \\S+ +\\d+\\.\\ds$`, 'm'));
    expect(show.stdout).toMatch(/^Outputs$/m);
    expect(show.stdout).toContain(`url       "file://${site}/index.html"`);

    // The log keeps Ansible's colours as written.
    const log = await fetch(`${server.url}/v1/attempts/${dep.current_attempt.id}/log`).then((r) => r.text());
    expect(log).toContain('\x1b[0;32mok: [localhost]');

    const check = await cli(server, ['check', 'site-1']);
    expect(check.code, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toMatch(/up/);

    const t = await cli(server, ['teardown', 'site-1', '--confirm', 'site-1', '--follow']);
    expect(t.code, t.stdout + t.stderr).toBe(0);
    expect(fs.existsSync(site)).toBe(false);
    const after = await server.api<any>('GET', '/v1/deployments/site-1');
    expect([after.state, after.outputs]).toEqual(['torn_down', {}]);
    const tPhases = await server.api<{ items: any[] }>(
      'GET',
      `/v1/attempts/${after.current_attempt.id}/phases`,
    );
    expect(tPhases.items.map((p) => p.phase)).toEqual(['Remove the site folder', 'Confirm nothing is left']);
  });

  it('writes no Python bytecode into the example (run.sh sets PYTHONDONTWRITEBYTECODE)', () => {
    expect(fs.existsSync(pycache)).toBe(false);
  });
});
