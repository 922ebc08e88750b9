import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootId, isAlive, parseIdentityLine, readStat, signalGroup } from '../../src/runner/identity.ts';
import { removeTempDirs, tempDir, waitFor } from './helpers.ts';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  removeTempDirs();
});

/** A sleeper in its own process group, as the supervisor makes plans. */
function sleeper(): ChildProcess {
  const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore' });
  children.push(c);
  return c;
}

function identityOf(pid: number) {
  const stat = readStat(pid);
  expect(stat).not.toBeNull();
  return { pid, start: stat!.start, boot: bootId() };
}

describe('identity', () => {
  it('reads boot id and own stat', () => {
    expect(bootId()).toMatch(/^[0-9a-f-]{36}$/);
    const own = readStat(process.pid);
    expect(own?.state).toMatch(/^[RS]$/);
    expect(own?.start).toMatch(/^\d+$/);
    expect(readStat(0)).toBeNull();
    expect(readStat(2 ** 22 + 1)).toBeNull();
  });

  it('isAlive for a live process; false once it is gone', async () => {
    const c = sleeper();
    const id = identityOf(c.pid!);
    expect(isAlive(id)).toBe(true);
    const exited = new Promise((r) => c.once('exit', r));
    expect(signalGroup(id, 'SIGKILL')).toBe(true);
    await exited;
    expect(isAlive(id)).toBe(false);
    expect(signalGroup(id, 'SIGKILL')).toBe(false);
  });

  it('refuses a mismatching start time or boot id and does not signal', () => {
    const c = sleeper();
    const id = identityOf(c.pid!);
    const wrongStart = { ...id, start: String(Number(id.start) + 1) };
    const wrongBoot = { ...id, boot: '00000000-0000-0000-0000-000000000000' };
    for (const bad of [wrongStart, wrongBoot]) {
      expect(isAlive(bad)).toBe(false);
      expect(signalGroup(bad, 'SIGKILL')).toBe(false);
    }
    expect(isAlive(id)).toBe(true); // still running: nothing was signalled
    expect(signalGroup({ ...id, pid: 1 }, 'SIGKILL')).toBe(false);
    expect(signalGroup({ ...id, pid: 0 }, 'SIGKILL')).toBe(false);
  });

  it('counts a zombie as dead', async () => {
    const dir = tempDir();
    const go = join(dir, 'go');
    const pidFile = join(dir, 'pid');
    // The background child becomes a zombie once it exits: its parent has exec'd sleep,
    // which never waits. It exits only after that exec, so sh cannot reap it first.
    const script = '(while [ ! -e "$1" ]; do sleep 0.01; done) & echo $! > "$2"; exec sleep 60';
    const c = spawn('/bin/sh', ['-c', script, 'sh', go, pidFile], { detached: true, stdio: 'ignore' });
    children.push(c);
    const pid = await waitFor(() => {
      try {
        const n = Number(readFileSync(pidFile, 'utf8'));
        return n > 0 ? n : null;
      } catch {
        return null;
      }
    }, 'pid file');
    await waitFor(() => readFileSync(`/proc/${c.pid}/comm`, 'utf8') === 'sleep\n', 'parent exec');
    const id = identityOf(pid);
    expect(isAlive(id)).toBe(true);
    writeFileSync(go, '');
    await waitFor(() => readStat(pid)?.state === 'Z', 'zombie state');
    expect(readStat(pid)?.start).toBe(id.start);
    expect(isAlive(id)).toBe(false);
    expect(signalGroup(id, 'SIGKILL')).toBe(false);
  });

  it('parses identity lines strictly', () => {
    const boot = bootId();
    expect(parseIdentityLine(`123 456 ${boot}\n`)).toEqual({ pid: 123, start: '456', boot });
    for (const bad of [
      '',
      'garbage',
      `123 456`,
      `x 456 ${boot}`,
      `1 456 ${boot}`,
      `0 4 ${boot}`,
      `12 4 5 6`,
    ]) {
      expect(parseIdentityLine(bad)).toBeNull();
    }
  });
});
