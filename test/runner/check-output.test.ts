// A verifying check's output (SPEC §9.3), kept in a file by whoever runs the check: runner.pl's guard,
// or this process where there is no runner (check-process.ts). Both keep the first 200 lines and at
// most 1 MiB, stdout and stderr together, read the rest and drop it (a flood costs neither memory nor
// disk), and write the file before the check's end is reported.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnCheck } from '../../src/runner/check-process.ts';
import { CHECK_OUTPUT_BYTES, CHECK_OUTPUT_LINES, type CheckStarter } from '../../src/runner/launcher-api.ts';
import { ShLauncher } from '../../src/runner/launcher.ts';
import { RunnerClient } from '../../src/runner/runner-client.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

const clients: RunnerClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  removeTempDirs();
});

const env = { PATH: '/usr/bin:/bin' };

const starters: [string, () => CheckStarter][] = [
  [
    'runner.pl',
    () => {
      const c = new RunnerClient(tempDir('lifeline-data-'), new ShLauncher(), { idleSeconds: 2 });
      clients.push(c);
      return c;
    },
  ],
  ['the fallback (spawned by this process)', () => ({ startCheck: spawnCheck })],
];

describe.each(starters)('check output through %s', (_name, starter) => {
  async function run(script: string, timeoutMs = 30_000) {
    const dir = tempDir();
    const output = path.join(dir, 'check-output');
    const rc = await starter().startCheck({ argv: ['sh', '-c', script], env, cwd: dir, timeoutMs, output })
      .done;
    return { rc, text: fs.readFileSync(output, 'utf8') };
  }

  it('stdout and stderr in one file, written before the end is reported; the exit code as ever', async () => {
    const r = await run('echo out; sleep 0.1; echo err >&2; sleep 0.1; printf tail; exit 3');
    expect(r.rc).toBe(3);
    // Two pipes where this process spawns the check: lines as they came, each whole.
    expect(r.text).toBe('out\nerr\ntail');
  });

  it('keeps the first 200 lines of a flood and drains the rest', async () => {
    // 100,000 lines: far past the pipe's buffer, so a reader that stopped reading would hang the check.
    const r = await run('i=0; while [ $i -lt 100000 ]; do echo "line $i"; i=$((i+1)); done; exit 0');
    expect(r.rc).toBe(0);
    const lines = r.text.split('\n');
    expect(lines.length).toBe(CHECK_OUTPUT_LINES + 1); // the last newline ends the 200th
    expect(lines[0]).toBe('line 0');
    expect(lines[CHECK_OUTPUT_LINES - 1]).toBe(`line ${CHECK_OUTPUT_LINES - 1}`);
  });

  it('keeps at most 1 MiB of one long line', async () => {
    const r = await run('head -c 3000000 /dev/zero | tr "\\0" x; exit 0');
    expect(r.rc).toBe(0);
    expect(r.text.length).toBe(CHECK_OUTPUT_BYTES);
    expect(r.text).toMatch(/^x+$/);
  });

  it('never writes through a symlink planted where the file goes', async () => {
    const dir = tempDir();
    const target = path.join(dir, 'elsewhere');
    fs.writeFileSync(target, 'untouched');
    const output = path.join(dir, 'check-output');
    fs.symlinkSync(target, output);
    const rc = await starter().startCheck({
      argv: ['sh', '-c', 'echo planted; exit 4'],
      env,
      cwd: dir,
      timeoutMs: 30_000,
      output,
    }).done;
    expect(fs.readFileSync(target, 'utf8')).toBe('untouched');
    expect(rc).toBe(4); // the check itself still ran: only its output is not kept
  });
});
