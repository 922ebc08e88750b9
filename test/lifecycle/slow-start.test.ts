// A start that is slow is not a start that was lost. On a busy 2-core machine the runner forks a burst
// of 200 supervisors one by one over several seconds, longer than the start deadline: an attempt
// whose request is still moving through the launcher's queue, or whose supervisor was forked and has
// not yet written its record, must run, not end `unknown`/`start_interrupted` while its plan runs on.
// A launcher that stops answering altogether is still given up after the deadline.
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { ShLauncher, type Launcher, type SupervisorHandle } from '../../src/runner/launcher.ts';
import { RunnerClient, runnerSocketName } from '../../src/runner/runner-client.ts';
import { SUPERVISOR_SCRIPT, type SpawnSupervisorOptions } from '../../src/runner/spawn.ts';
import type { Attempt } from '../../src/domain/types.ts';
import { ADMIN, dialectConfig, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';

/**
 * The start deadline of these engines: a second (the test helpers' is 2 s). Every delay below is a
 * multiple of it; a supervisor forked at once writes its record some tens of ms after.
 */
const DEADLINE_MS = 1_000;

class Proxy extends EventEmitter implements SupervisorHandle {
  pid?: number;
  exitCode: number | null = null;
}

/** Hands each start to the real launcher only when `release` says so, one request at a time. */
class Gate implements Launcher {
  private held: { opts: SpawnSupervisorOptions; handle: Proxy }[] = [];
  private progress = 0;
  constructor(private readonly real: Launcher) {}
  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    const handle = new Proxy();
    this.held.push({ opts, handle });
    return handle;
  }
  get waiting(): number {
    return this.held.length;
  }
  release(): void {
    const next = this.held.shift();
    if (!next) return;
    this.progress = Date.now();
    const child = this.real.start(next.opts);
    child.once('spawn', () => {
      next.handle.pid = child.pid;
      next.handle.emit('spawn');
    });
    child.on('exit', (code: number | null) => {
      next.handle.exitCode = code;
      next.handle.emit('exit', code);
    });
    child.on('error', (err: Error) => next.handle.emit('error', err));
  }
  lastProgressAt(): number {
    return this.progress;
  }
  close(): void {
    this.held = [];
    this.real.close();
  }
}

/** supervisor.sh, started 1.5 deadlines late in the same process: forked at once, its records come late. */
class LateRecords implements Launcher {
  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    const dir = path.resolve(opts.dir);
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        `/bin/sleep ${(1.5 * DEADLINE_MS) / 1000}; exec /bin/sh "$@"`,
        'sh',
        SUPERVISOR_SCRIPT,
        dir,
        ...opts.argv,
      ],
      { detached: true, stdio: 'ignore', env: opts.env, cwd: opts.cwd },
    );
    child.unref();
    return child;
  }
  lastProgressAt(): number {
    return 0;
  }
  close(): void {}
}

let engine: Lifeline | null = null;
afterEach(async () => {
  await engine?.close();
  engine = null;
});

async function open(wrap: (l: Launcher) => Launcher, dir = tempDir()): Promise<Lifeline> {
  const config = await dialectConfig('sqlite', dir, { start_deadline: `${DEADLINE_MS}ms` });
  expect(config.startDeadlineMs).toBe(DEADLINE_MS);
  const e = await openLifeline({ config, logger: quietLogger(), wrapLauncher: wrap });
  await e.start();
  return e;
}

async function deploy(on: Lifeline, name: string): Promise<Attempt> {
  await on.createDeployment({ name, plan: 'ok' }, ADMIN);
  return on.startDeploy(name, {}, ADMIN);
}

const ended = (on: Lifeline, id: string, timeoutMs = 30_000) =>
  waitFor(
    async () => {
      const a = await on.getAttempt(id);
      return a.state === 'queued' || a.state === 'running' ? null : a;
    },
    `attempt ${id} to end`,
    timeoutMs,
  );

describe('slow starts', () => {
  it('requests waiting in a launcher whose queue moves are not given up, however long the queue', async () => {
    let gate!: Gate;
    engine = await open((real) => (gate = new Gate(real)));
    const attempts: Attempt[] = [];
    for (let i = 0; i < 8; i++) attempts.push(await deploy(engine, `burst-${i}`));
    await waitFor(() => gate.waiting === 8, 'all 8 requests to wait in the launcher');
    // One start every quarter deadline: the last is handed on after two deadlines.
    const t = setInterval(() => gate.release(), DEADLINE_MS / 4);
    try {
      for (const a of attempts)
        expect(await ended(engine, a.id)).toMatchObject({ state: 'succeeded', rc: 0 });
    } finally {
      clearInterval(t);
    }
  }, 60_000);

  it('a supervisor that was forked but records itself only after the deadline is not lost', async () => {
    engine = await open(() => new LateRecords());
    const a = await deploy(engine, 'late');
    const end = await ended(engine, a.id);
    expect(end).toMatchObject({ state: 'succeeded', rc: 0, reason: null });
  }, 60_000);

  it('requests made while the runner itself starts (1.5 deadlines, past it) are not given up', async () => {
    const dir = tempDir();
    // A perl that takes 1.5 deadlines to start (well inside the client's 5 s timeout).
    const slowPerl = path.join(tempDir(), 'slow-perl');
    const delay = (1.5 * DEADLINE_MS) / 1000;
    fs.writeFileSync(slowPerl, `#!/bin/sh\n/bin/sleep ${delay}\nexec /usr/bin/perl "$@"\n`, { mode: 0o700 });
    const fellBack: string[] = [];
    engine = await open((real) => {
      real.close();
      return new RunnerClient(dir, new ShLauncher(), { perl: slowPerl, log: (m) => fellBack.push(m) });
    }, dir);
    const attempts = [await deploy(engine, 'early-1'), await deploy(engine, 'early-2')];
    for (const a of attempts) expect(await ended(engine, a.id)).toMatchObject({ state: 'succeeded', rc: 0 });
    // Started by the runner, not by the supervisor.sh fallback.
    expect(fellBack).toEqual([]);
    expect(fs.existsSync(path.join(dir, runnerSocketName()))).toBe(true);
  }, 60_000);

  it('a launcher that never answers is still given up after the start deadline', async () => {
    engine = await open((real) => new Gate(real));
    const a = await deploy(engine, 'stalled');
    const end = await ended(engine, a.id, 20_000);
    expect(end).toMatchObject({ state: 'unknown', reason: 'start_interrupted' });
    expect((await engine.getDeployment('stalled')).state).toBe('unknown');
  }, 60_000);
});
