// `lifeline stack create -f FILE`, `stack ls`, `stack show NAME` (SPEC §12.5): the CLI (in-process) against a
// real server. Units in dependency order with state, attempt and outputs; refusals name the field.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;
beforeAll(async () => {
  server = await TestServer.start();
});
afterAll(async () => {
  await server?.stop();
});

const SPEC = `name: lab-1
labels: { course: sec-101 }
units:
  - key: fin
    plan: ok
    after: [vm]
  - key: net
    plan: ok
  - key: vm
    plan: ok
    count: 2
    after: [net]
`;

describe('lifeline stack', () => {
  it('create -f, ls, show (units in dependency order), --json', async () => {
    const file = path.join(server.dir, 'lab-1.yaml');
    fs.writeFileSync(file, SPEC);
    const created = await cli(server, ['stack', 'create', '-f', file]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/created stack lab-1 \(stk_[0-9A-Z]{26}\) with 4 units: pending/);

    const ls = await cli(server, ['stack', 'ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(/^NAME\s+STATE\s+UNITS\s+RUN/m);
    expect(ls.stdout).toMatch(/lab-1\s+pending\s+0\/4 ready\s+-/);

    const deployed = await cli(server, ['deploy', 'lab-1-net', '--follow']);
    const show = await cli(server, ['stack', 'show', 'lab-1']);
    expect(show.code).toBe(0);
    const lines = show.stdout.split('\n');
    const units = lines.filter((l) => /lab-1-/.test(l)).map((l) => l.trim().split(/\s+/).slice(0, 3));
    // What the deploy printed says why, when the unit did not end ready.
    expect(units, `${deployed.stdout}${deployed.stderr}`).toEqual([
      ['0', 'lab-1-net', 'ready'],
      ['1', 'lab-1-vm-1', 'pending'],
      ['1', 'lab-1-vm-2', 'pending'],
      ['2', 'lab-1-fin', 'pending'],
    ]);
    expect(show.stdout).toMatch(/lab-1-net\s+ready\s+#1 deploy succeeded\s+-/);
    expect(show.stdout).toMatch(/^lab-1 \(stk_.*\) partial version \d+$/m);
    expect(show.stdout).toContain('run: none active');

    const json = JSON.parse((await cli(server, ['stack', 'show', 'lab-1', '--json'])).stdout);
    expect(json.units.map((u: { deployment: string }) => u.deployment)).toEqual([
      'lab-1-net',
      'lab-1-vm-1',
      'lab-1-vm-2',
      'lab-1-fin',
    ]);
  });

  it('show marks a drifted unit beside its state (SPEC §14.2)', async () => {
    const file = path.join(server.dir, 'lab-2.yaml');
    fs.writeFileSync(file, 'name: lab-2\nunits:\n  - key: net\n    plan: ok\n  - key: vm\n    plan: ok\n');
    expect((await cli(server, ['stack', 'create', '-f', file])).code).toBe(0);
    for (const unit of ['lab-2-net', 'lab-2-vm'])
      expect((await cli(server, ['deploy', unit, '--follow'])).code).toBe(0);
    const net = JSON.parse((await cli(server, ['show', 'lab-2-net', '--json'])).stdout);
    fs.writeFileSync(path.join(server.dataDir, 'workspaces', net.id, 'check_rc'), '3\n');
    expect((await cli(server, ['check', 'lab-2-net'])).stdout).toContain('absent');
    const show = await cli(server, ['stack', 'show', 'lab-2']);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/lab-2-net\s+ready drift:absent\s+#1 deploy succeeded/);
    expect(show.stdout).toMatch(/lab-2-vm\s+ready\s+#1 deploy succeeded/);
    expect(show.stdout).not.toMatch(/lab-2-vm\s+.*drift/);
  });

  it('a bad spec exits 2 naming the field; an unreadable file is a usage error', async () => {
    const file = path.join(server.dir, 'bad.yaml');
    fs.writeFileSync(file, 'name: bad\nunits:\n  - key: a\n    plan: ok\n    after: [a]\n');
    const bad = await cli(server, ['stack', 'create', '-f', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('units[0].after[0]');
    const missing = await cli(server, ['stack', 'create', '-f', path.join(server.dir, 'nope.yaml')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read');
    const unknown = await cli(server, ['stack', 'show', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('NOT_FOUND');
  });
});
