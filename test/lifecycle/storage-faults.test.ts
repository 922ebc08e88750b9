// Storage faults under a running engine, on real files (issue 9, items 6, 7 and 9): a second server
// through a symlink, the database file deleted under the server, a corrupt instance.json, an exit record
// dated before the attempt started, and the watcher's logging while the store fails.
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { LockHeld } from '../../src/lifecycle/lock.ts';
import { readProcess, readSupervisor } from '../../src/runner/rundir.ts';
import {
  keepDurableCommits,
  OPERATOR,
  quietLogger,
  startEngine,
  tempDir,
  testConfig,
  waitFor,
} from '../helpers/engine.ts';

// This suite proves durability: commits as production makes them (synchronous=FULL).
keepDurableCommits();

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const e of open.splice(0).reverse()) await e.close().catch(() => undefined);
});

function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        cb();
      },
    }),
  );
  return { logger, lines };
}

describe('one server per database, however its path is spelled', () => {
  it('a symlink to a live database file meets the first server’s lock', async () => {
    const dir = tempDir();
    open.push(await startEngine(dir));
    const other = tempDir();
    const link = path.join(other, 'link.db');
    fs.symlinkSync(path.join(dir, 'lifeline.db'), link);
    const config = { ...testConfig(other), db: `sqlite:${link}` };
    const err = await openLifeline({ config, logger: quietLogger() }).catch((e) => e);
    expect(err).toBeInstanceOf(LockHeld);
  });

  it('a symlinked directory to a live database meets the lock too', async () => {
    const dir = tempDir();
    open.push(await startEngine(dir));
    const other = tempDir();
    fs.symlinkSync(dir, path.join(other, 'linked'));
    const config = { ...testConfig(other), db: `sqlite:${path.join(other, 'linked', 'lifeline.db')}` };
    const err = await openLifeline({ config, logger: quietLogger() }).catch((e) => e);
    expect(err).toBeInstanceOf(LockHeld);
  });
});

describe('the database file deleted under a running server', () => {
  it('answers 503 STORE_UNAVAILABLE, readiness 503, says so once in the log, and the watcher logs sparingly', async () => {
    const dir = tempDir();
    const config = testConfig(dir, { reap_interval: '200ms' });
    const { logger, lines } = capturingLogger();
    const engine = await openLifeline({ config, logger });
    await engine.start();
    const app = await buildApp({ api: engine, config, logger: false });
    open.push(engine, app);

    const created = await app.inject({
      method: 'POST',
      url: '/v1/deployments',
      payload: { name: 'a', plan: 'sleep' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const started = await app.inject({ method: 'POST', url: '/v1/deployments/a/attempts' });
    expect(started.statusCode, started.body).toBe(202);
    await waitFor(
      async () => (await engine.getAttempt(JSON.parse(started.body).id)).state === 'running',
      'running',
    );
    expect((await app.inject({ url: '/v1/health/ready' })).statusCode).toBe(200);

    for (const f of fs.readdirSync(dir)) if (f.startsWith('lifeline.db')) fs.rmSync(path.join(dir, f));

    const again = await app.inject({
      method: 'POST',
      url: '/v1/deployments',
      payload: { name: 'b', plan: 'ok' },
    });
    expect(again.statusCode, again.body).toBe(503);
    expect(JSON.parse(again.body).code).toBe('STORE_UNAVAILABLE');
    expect(again.headers['retry-after']).toBeDefined();
    const ready = await app.inject({ url: '/v1/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(JSON.parse(ready.body).checks.db).toBe(false);
    // Reads refuse too: what they would show is gone with the file.
    expect((await app.inject({ url: '/v1/deployments/a' })).statusCode).toBe(503);

    // The watcher polls the running attempt every 100 ms and the reaper runs every 200 ms; over a
    // second of failures (some fifteen passes) the log gets the outage once, not once per pass.
    await new Promise((r) => setTimeout(r, 1000));
    const lost = lines.filter((l) => /database file lost/.test(String(l.msg)));
    expect(lost).toHaveLength(1);
    expect(String(lost[0].err)).toMatch(/lifeline\.db was deleted/);
    const errors = lines.filter((l) => Number(l.level) >= 50 && !/database file lost/.test(String(l.msg)));
    expect(errors.length, JSON.stringify(errors)).toBeLessThanOrEqual(2);
    expect(errors.every((l) => /store (still )?unavailable/.test(String(l.msg)))).toBe(true);

    // Tidy up the plan the server can no longer record.
    const runDir = path.join(dir, 'attempts', JSON.parse(started.body).id);
    process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
  });

  it('a database file replaced by another file is refused the same way', async () => {
    const dir = tempDir();
    const config = testConfig(dir);
    const engine = await openLifeline({ config, logger: quietLogger() });
    await engine.start();
    open.push(engine);
    await engine.createDeployment({ name: 'a', plan: 'ok' }, OPERATOR);
    const file = path.join(dir, 'lifeline.db');
    fs.copyFileSync(file, `${file}.copy`);
    fs.renameSync(`${file}.copy`, file);
    const err = await engine.createDeployment({ name: 'b', plan: 'ok' }, OPERATOR).catch((e) => e);
    expect(String(err.message)).toMatch(/was replaced by another file/);
    expect((await engine.readiness()).checks.db).toBe(false);
  });
});

describe('start-up', () => {
  it('a corrupt instance.json names the file and says what to do', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'instance.json'), '{"id": "ins_trunc');
    const err = await openLifeline({ config: testConfig(dir), logger: quietLogger() }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('StartupError');
    expect(err.message).toContain(path.join(dir, 'instance.json'));
    expect(err.message).toMatch(/restore it from a backup, or delete it/);
    // Nothing was overwritten: the operator can still look at it.
    expect(fs.readFileSync(path.join(dir, 'instance.json'), 'utf8')).toBe('{"id": "ins_trunc');
  });
});

describe('an exit record dated before the attempt started', () => {
  it('ends the attempt at its start, never before, and logs it', async () => {
    const dir = tempDir();
    const { logger, lines } = capturingLogger();
    const engine = await openLifeline({ config: testConfig(dir), logger });
    await engine.start();
    open.push(engine);
    await engine.createDeployment({ name: 'early', plan: 'sleep' }, OPERATOR);
    const att = await engine.startDeploy('early', {}, OPERATOR);
    const running = await waitFor(async () => {
      const a = await engine.getAttempt(att.id);
      return a.state === 'running' ? a : null;
    }, 'running');
    const runDir = path.join(dir, 'attempts', att.id);
    // The supervisor goes first, so the exit record is the one written here: a clock stepped back an hour.
    process.kill(-readSupervisor(runDir)!.pid, 'SIGKILL');
    const early = Date.parse(running.started_at!) - 3_600_000;
    fs.writeFileSync(path.join(runDir, 'exit.tmp'), `0 - ${early}\n`);
    fs.renameSync(path.join(runDir, 'exit.tmp'), path.join(runDir, 'exit'));
    process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
    const ended = await waitFor(async () => {
      const a = await engine.getAttempt(att.id);
      return a.ended_at ? a : null;
    }, 'ended');
    expect(ended.state).toBe('succeeded');
    expect(Date.parse(ended.ended_at!)).toBeGreaterThanOrEqual(Date.parse(ended.started_at!));
    expect(ended.ended_at).toBe(ended.started_at);
    const warned = lines.find((l) => /exit record is dated before the attempt started/.test(String(l.msg)));
    expect(warned).toMatchObject({ attempt_id: att.id, exit_at: new Date(early).toISOString() });
  });
});
