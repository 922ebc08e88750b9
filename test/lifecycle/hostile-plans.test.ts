// Hostile plans through a real engine: runner events that cannot be parsed safely, secrets printed
// in ways per-line masking missed, grandchildren that leave the plan's session. Each ends cleanly.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attempt } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { FIXTURES, fixturePlans, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
const plans = {
  ...fixturePlans(),
  deep: { deploy: p('deep.sh'), teardown: p('ok.sh'), cancel_grace: '1s', env: { SLEEP_SECONDS: '30' } },
  secretive: {
    deploy: p('secretive.sh'),
    teardown: p('ok.sh'),
    params: {
      type: 'object',
      properties: {
        key: { type: 'string', writeOnly: true },
        pin: { type: 'integer', writeOnly: true },
        creds: { type: 'object', writeOnly: true },
      },
    },
  },
  orphan: { deploy: p('orphan.sh'), teardown: p('ok.sh'), cancel_grace: '1s' },
  deepquick: { deploy: p('deep.sh'), teardown: p('ok.sh'), env: { SLEEP_SECONDS: '0' } },
  deeptimeout: {
    deploy: p('deep.sh'),
    teardown: p('ok.sh'),
    timeout: '1s',
    cancel_grace: '500ms',
    env: { SLEEP_SECONDS: '30' },
  },
};

// One stored log line per attempt: the rest of each log is served from the raw files.
const LOG_LIMIT = { lines: 1, bytes: 1_000_000 };

let engine: Lifeline;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir();
  engine = await startEngine(dataDir, { plans, log_limit: LOG_LIMIT });
});
afterAll(async () => {
  await engine.close();
});

let n = 0;
async function deploy(
  plan: string,
  params?: Record<string, unknown>,
): Promise<{ name: string; attempt: Attempt }> {
  const name = `${plan}-${++n}`;
  await engine.createDeployment({ name, plan, params }, OPERATOR);
  return { name, attempt: await engine.startDeploy(name, {}, OPERATOR) };
}

async function ended(id: string): Promise<Attempt> {
  return waitFor(async () => {
    const a = await engine.getAttempt(id);
    return a.state !== 'queued' && a.state !== 'running' ? a : null;
  }, `attempt ${id} to end`);
}

async function runnerEvents(name: string): Promise<Record<string, unknown>[]> {
  const all = await engine.listEvents({ limit: 1000, deployment: name });
  return all.items.filter((e) => e.type === 'runner_event').map((e) => e.data);
}

describe('deeply nested runner events', () => {
  it('a plan that writes deep lines and exits ends, each line a marker with its size and error', async () => {
    const { name, attempt } = await deploy('deepquick');
    expect(await ended(attempt.id)).toMatchObject({ state: 'succeeded', rc: 0 });
    const rev = await runnerEvents(name);
    expect(rev).toHaveLength(2);
    for (const e of rev) {
      expect(e).toMatchObject({ invalid: true, error: expect.stringMatching(/nest|long/) });
      expect(e.bytes).toBeGreaterThan(30_000);
    }
    // Each line's own size without its newline (the first is far longer than one read of the file).
    expect(rev[0]).toMatchObject({ bytes: 200_006, error: expect.stringMatching(/long/) });
    expect(rev[1]).toMatchObject({ bytes: 32_006, error: expect.stringMatching(/nest/) });
  });

  it('timeout is still enforced after a deep line', async () => {
    const { attempt } = await deploy('deeptimeout');
    expect(await ended(attempt.id)).toMatchObject({ state: 'failed', reason: 'timeout', rc: 143 });
  });

  it('cancel still works after a deep line, and the deployment takes a new deploy', async () => {
    const { name, attempt } = await deploy('deep');
    await waitFor(async () => (await runnerEvents(name)).length === 2 || null, 'the deep lines read');
    await engine.cancel(name, OPERATOR);
    expect(await ended(attempt.id)).toMatchObject({ state: 'cancelled', rc: 143 });
    const next = await engine.startDeploy(name, {}, OPERATOR);
    await engine.cancel(name, OPERATOR);
    await ended(next.id);
  });
});

describe('secrets at rest', () => {
  const mode = (f: string) => fs.statSync(f).mode & 0o777;

  it('the data dir, run dirs and workspaces are 0700; their files and the SQLite files 0600', async () => {
    const { attempt } = await deploy('events');
    await ended(attempt.id);
    const a = await engine.getAttempt(attempt.id);
    expect(mode(dataDir)).toBe(0o700);
    const runDir = path.join(dataDir, 'attempts', attempt.id);
    expect(fs.existsSync(runDir)).toBe(true);
    expect(mode(path.join(dataDir, 'attempts'))).toBe(0o700);
    expect(mode(runDir)).toBe(0o700);
    expect(mode(path.join(dataDir, 'workspaces', a.deployment_id))).toBe(0o700);
    const files = fs.readdirSync(runDir);
    expect(files).toEqual(expect.arrayContaining(['stdout', 'stderr', 'events.jsonl', 'exit', 'process']));
    for (const f of files) expect([f, mode(path.join(runDir, f))]).toEqual([f, 0o600]);
    const db = fs.readdirSync(dataDir).filter((f) => f.startsWith('lifeline.db'));
    expect(db).toEqual(expect.arrayContaining(['lifeline.db', 'lifeline.db-wal', 'lifeline.db.lock']));
    for (const f of db) expect([f, mode(path.join(dataDir, f))]).toEqual([f, 0o600]);
    // The runner's socket starts whatever it is sent: only the owner may connect.
    const sockets = fs.readdirSync(dataDir).filter((f) => /^runner-.*\.sock$/.test(f));
    expect(sockets).toHaveLength(1);
    expect(fs.statSync(path.join(dataDir, sockets[0])).isSocket()).toBe(true);
    expect(mode(path.join(dataDir, sockets[0])) & 0o077).toBe(0);
  });
});

describe('masking by value', () => {
  const key = '-----BEGIN KEY-----\nAAAAsecretline1\nBBBBsecretline2\n-----END KEY-----';
  const params = { key, pin: 4242, creds: { user: 'u', pass: 'hunter2' } };
  const leaks = ['AAAAsecretline1', 'BBBBsecretline2', '4242', 'hunter2'];
  const tails = ['line1', 'line2', 'AAAA', 'BBBB', 'secr'];

  it('a multi-line key, writeOnly integers and objects are masked in events and in the log at any offset', async () => {
    const { name, attempt } = await deploy('secretive', params);
    expect(await ended(attempt.id)).toMatchObject({ state: 'succeeded' });
    const events = JSON.stringify((await engine.listEvents({ limit: 1000, deployment: name })).items);
    for (const s of leaks) expect(events).not.toContain(s);
    expect((await runnerEvents(name)).filter((e) => !e.lifeline)).toEqual([
      { pin: '***', creds: '***', list: ['***'] },
    ]);
    const log = await engine.readAttemptLog(attempt.id);
    expect(log.text).toContain('key follows');
    for (const s of leaks) expect(log.text).not.toContain(s);
    // A reader may start or end a page anywhere, even inside a secret: no part of it shows.
    for (let at = 0; at < log.next_offset; at++) {
      for (const limit of [undefined, 7]) {
        const page = await engine.readAttemptLog(attempt.id, at, { limit });
        for (const t of tails)
          expect([at, limit, page.text]).not.toEqual([at, limit, expect.stringContaining(t)]);
      }
    }
  });

  it('removing the plan from the config unmasks nothing', async () => {
    const { name, attempt } = await deploy('secretive', params);
    await ended(attempt.id);
    await engine.close();
    const { secretive: _gone, ...rest } = plans;
    engine = await startEngine(dataDir, { plans: rest, log_limit: LOG_LIMIT });
    const dep = await engine.getDeployment(name);
    expect(dep.params).toEqual({ key: '***', pin: '***', creds: '***' });
    expect((await engine.getAttempt(attempt.id)).params).toEqual({ key: '***', pin: '***', creds: '***' });
    const log = await engine.readAttemptLog(attempt.id);
    expect(log.text).toContain('end');
    for (const s of leaks) expect(log.text).not.toContain(s);
  });
});

describe('grandchildren', () => {
  it('a grandchild that called setsid is ended by cancel too', async () => {
    const { name, attempt } = await deploy('orphan');
    const text = await waitFor(async () => {
      const t = (await engine.readAttemptLog(attempt.id)).text;
      return /grandchild \d+/.test(t) ? t : null;
    }, 'the grandchild pid');
    const pid = Number(/grandchild (\d+)/.exec(text)![1]);
    const alive = () => {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return !/^\S+ \(.*\) [ZX]/.test(stat);
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);
    await engine.cancel(name, OPERATOR);
    expect(await ended(attempt.id)).toMatchObject({ state: 'cancelled' });
    await waitFor(() => !alive() || null, `grandchild ${pid} to be gone`, 5_000);
  });
});
