// scripts/pretest.ts, the `pretest` that readies a fresh machine for `npm test`: what it decides for each
// machine (root or not, apt or not, what is missing), and what it finds on a machine made up in a temp dir.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ANSIBLE,
  CHROMIUM,
  customChromium,
  decide,
  PERL,
  POSTGRES,
  probe,
  type Machine,
} from '../../scripts/pretest.ts';

const machine = (m: Partial<Machine>): Machine => ({ missing: [], uid: 1000, apt: true, sudo: true, ...m });

describe('pretest decide', () => {
  it('does nothing when nothing is missing, whoever runs it', () => {
    expect(decide(machine({ uid: 0 }))).toEqual({ kind: 'ok' });
    expect(decide(machine({ uid: 1000, apt: false, sudo: false }))).toEqual({ kind: 'ok' });
  });

  it('installs exactly the missing packages as root with apt-get', () => {
    expect(decide(machine({ uid: 0, missing: [POSTGRES, CHROMIUM, ANSIBLE] }))).toEqual({
      kind: 'install',
      packages: ['postgresql', 'chromium-headless-shell', 'ansible-core'],
    });
    expect(decide(machine({ uid: 0, missing: [ANSIBLE] }))).toEqual({
      kind: 'install',
      packages: ['ansible-core'],
    });
  });

  it('stops with one line naming the sudo command for a user who is not root', () => {
    const d = decide(machine({ uid: 1000, missing: [CHROMIUM, PERL] }));
    expect(d).toEqual({
      kind: 'stop',
      line: "npm test needs Chromium's headless shell at /usr/bin/chromium-headless-shell, perl: run `sudo apt-get install -y chromium-headless-shell perl`, then npm test again",
    });
  });

  it('names the command to run as root when there is no sudo', () => {
    const d = decide(machine({ uid: 1000, sudo: false, missing: [POSTGRES] }));
    expect(d.kind).toBe('stop');
    expect(d.kind === 'stop' && d.line).toBe(
      'npm test needs PostgreSQL server binaries (initdb, pg_ctl, postgres): run `apt-get install -y postgresql` as root, then npm test again',
    );
  });

  it('stops, even as root, when LIFELINE_CHROMIUM names a browser that is not there', () => {
    expect(decide(machine({ uid: 0, missing: [POSTGRES, customChromium('/opt/x/chrome')] }))).toEqual({
      kind: 'stop',
      line: 'npm test needs Chromium at /opt/x/chrome (LIFELINE_CHROMIUM): no such program; correct LIFELINE_CHROMIUM, or unset it to use /usr/bin/chromium-headless-shell',
    });
  });

  it('never installs without apt-get, even as root, and says what to install', () => {
    const d = decide(machine({ uid: 0, apt: false, missing: [POSTGRES, ANSIBLE] }));
    expect(d.kind).toBe('stop');
    const line = d.kind === 'stop' ? d.line : '';
    expect(line).not.toContain('\n');
    expect(line).toMatch(
      /^npm test needs PostgreSQL server binaries \(initdb, pg_ctl, postgres\), ansible-playbook and this machine has no apt-get/,
    );
  });
});

describe('pretest probe', () => {
  let dir = '';
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  function tool(name: string): string {
    const f = path.join(dir, 'bin', name);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, '#!/bin/sh\n', { mode: 0o755 });
    return f;
  }

  it('finds the tools on the PATH it is given and Chromium where LIFELINE_CHROMIUM says', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-pretest-'));
    const bin = path.join(dir, 'bin');
    tool('perl');
    const env = {
      PATH: bin,
      LIFELINE_TEST_PG_URL: 'postgres://127.0.0.1:1/x',
      LIFELINE_CHROMIUM: path.join(bin, 'chromium'),
    };
    let m = probe(env);
    expect(m.missing).toEqual([customChromium(path.join(bin, 'chromium')), ANSIBLE]);
    expect(m.apt).toBe(false);
    expect(m.sudo).toBe(false);

    tool('chromium');
    tool('ansible-playbook');
    tool('apt-get');
    m = probe(env);
    expect(m.missing).toEqual([]);
    expect(m.apt).toBe(true);
  });

  it('does not take a file that is not executable for a tool', () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-pretest-'));
    const bin = path.join(dir, 'bin');
    fs.chmodSync(tool('perl'), 0o644);
    tool('ansible-playbook');
    const m = probe({ PATH: bin, LIFELINE_TEST_PG_URL: 'postgres://x', LIFELINE_CHROMIUM: tool('chromium') });
    expect(m.missing).toEqual([PERL]);
  });
});
