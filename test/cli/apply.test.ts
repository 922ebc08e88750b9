// `lifeline diff -f` and `lifeline apply -f` (SPEC §14.1): the CLI (in-process, see helpers.ts) against a real server.
// Several YAML documents and a list, the plan printed plain when piped, exit codes, --yes, --follow,
// a parse error with its line, and an unknown key with its suggestion.
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

const FILE = `name: lab-x
units:
  - key: net
    plan: ok
---
- name: solo-x
  plan: ok
`;

describe('lifeline diff / apply', () => {
  it('diff shows the plan (exit 1), apply --yes --follow applies it, then diff says nothing (exit 0)', async () => {
    const file = path.join(server.dir, 'ranges.yaml');
    fs.writeFileSync(file, FILE);
    const diff = await cli(server, ['diff', '-f', file]);
    expect(diff.stderr).toBe('');
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('+ stack lab-x: create');
    expect(diff.stdout).toContain('+ deployment solo-x: create');
    expect(diff.stdout).toContain('    + labels.lifeline.source = "ranges"');
    expect(diff.stdout).not.toMatch(/\x1b\[/); // piped: plain
    expect(diff.stdout).toContain('Plan: 2 to create, 0 to change, 0 to remove, 0 blocked.');

    const refused = await cli(server, ['apply', '-f', file]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('pass --yes');

    const applied = await cli(server, ['apply', '-f', file, '--yes', '--follow']);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/started deploy of stack lab-x \(run run_/);
    expect(applied.stdout).toContain('stack lab-x: deploy succeeded');
    expect(applied.stdout).toContain('deployment solo-x: deploy succeeded');

    const again = await cli(server, ['diff', '-f', file]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe('No changes.');
    const reapply = await cli(server, ['apply', '-f', file, '--yes']);
    expect(reapply.code).toBe(0);
    expect(reapply.stdout).not.toContain('started');

    fs.writeFileSync(file, FILE.replace('plan: ok\n---', 'plan: ok\n    params: { size: 2 }\n---'));
    const changed = await cli(server, ['diff', '-f', file]);
    expect(changed.code).toBe(1);
    expect(changed.stdout).toContain('~ stack lab-x: update');
    expect(changed.stdout).toContain('    + spec.units[0].params.size = 2');
  });

  it('a file that does not parse names its line; an unknown key its suggestion', async () => {
    const bad = path.join(server.dir, 'bad.yaml');
    fs.writeFileSync(bad, 'name: a\nplan: ok\n  labels: [\n');
    const res = await cli(server, ['diff', '-f', bad]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/bad\.yaml:2: .*line 2/);
    // In a later document or a list, the line is the file's; the parser's excerpt is left out.
    const later = path.join(server.dir, 'later.yaml');
    fs.writeFileSync(later, 'name: a\nplan: ok\n---\n- name: b\n  plan: ok\n  labels: [x\n');
    const l = await cli(server, ['diff', '-f', later]);
    expect(l.code).toBe(2);
    expect(l.stderr).toMatch(/later\.yaml:7: .*at line 7, column 1\n/);
    const typo = path.join(server.dir, 'typo.yaml');
    fs.writeFileSync(typo, 'name: a\nplan: ok\nparms: {}\n');
    const t = await cli(server, ['diff', '-f', typo]);
    expect(t.code).toBe(2);
    expect(t.stderr).toContain('documents[0].parms');
    expect(t.stderr).toContain('did you mean params?');
  });
});
