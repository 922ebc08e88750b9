// Run-dir records: "not there yet" and "cannot be read" are different answers. Only a record that is
// absent (or not yet a whole line) reads as null; one that cannot be read throws, so the watcher logs
// it and looks again instead of taking a live attempt for one with no supervisor, plan or exit.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bootId } from '../../src/runner/identity.ts';
import { readExit, readIdentities, readProcess } from '../../src/runner/rundir.ts';
import { readIfThere } from '../../src/runner/read-if-there.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

afterEach(() => removeTempDirs());

describe('run-dir records', () => {
  it('absent or half-written reads as null; whole reads as the record', () => {
    const dir = tempDir();
    expect(readProcess(dir)).toBeNull();
    expect(readProcess(path.join(dir, 'no-such-dir'))).toBeNull();
    expect(readExit(dir)).toBeNull();
    fs.writeFileSync(path.join(dir, 'process'), `123 456 ${bootId()}`); // no "\n" yet
    expect(readProcess(dir)).toBeNull();
    fs.writeFileSync(path.join(dir, 'process'), `123 456 ${bootId()}\n`);
    expect(readProcess(dir)).toEqual({ pid: 123, start: '456', boot: bootId() });
    expect(readIdentities(dir)).toEqual({ proc: { pid: 123, start: '456', boot: bootId() }, sup: null });
  });

  it('a record that cannot be read throws instead of reading as absent', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'exit'));
    fs.mkdirSync(path.join(dir, 'process'));
    expect(() => readExit(dir)).toThrow(/EISDIR/);
    expect(() => readProcess(dir)).toThrow(/EISDIR/);
    expect(() => readIdentities(dir)).toThrow(/EISDIR/);
    // A path through a file is "not there", like a missing directory.
    fs.writeFileSync(path.join(dir, 'file'), 'x');
    expect(readIfThere(path.join(dir, 'file', 'exit'))).toBeNull();
  });

  it('/proc of a process that is gone reads as null', () => {
    expect(readIfThere('/proc/999999999/stat')).toBeNull();
    expect(readIfThere(`/proc/${process.pid}/stat`)).toMatch(new RegExp(`^${process.pid} `));
  });
});
