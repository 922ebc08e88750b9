import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { IdempotentReplay } from '../../src/lifecycle/api.ts';
import { LockHeld } from '../../src/lifecycle/lock.ts';
import {
  dbUrlFor,
  DIALECTS,
  OPERATOR,
  quietLogger,
  startEngine,
  tempDir,
  testConfig,
  waitFor,
} from '../helpers/engine.ts';

const open: Lifeline[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

describe.each(DIALECTS)('concurrency (%s)', (dialect) => {
  it('50 concurrent start requests on one deployment: one accepted, 49 ATTEMPT_IN_PROGRESS, one attempt row', async () => {
    const engine = await startEngine(tempDir(), {}, dialect);
    open.push(engine);
    await engine.createDeployment({ name: 'busy', plan: 'short' }, OPERATOR);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, () => engine.startDeploy('busy', {}, OPERATOR)),
    );
    const accepted = results.filter((r) => r.status === 'fulfilled');
    const refused = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason.code);
    expect(accepted).toHaveLength(1);
    expect(refused).toEqual(Array(49).fill('ATTEMPT_IN_PROGRESS'));
    const rows = await engine.store.db.selectFrom('attempts').selectAll().execute();
    expect(rows).toHaveLength(1);
    await waitFor(async () => (await engine.getDeployment('busy')).state === 'ready', 'ready');
  });

  it('concurrent creates of one name: exactly one wins', async () => {
    const engine = await startEngine(tempDir(), {}, dialect);
    open.push(engine);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => engine.createDeployment({ name: 'same', plan: 'ok' }, OPERATOR)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const codes = results
      .filter((r) => r.status === 'rejected')
      .map((r) => (r as PromiseRejectedResult).reason.code);
    expect(new Set(codes)).toEqual(new Set(['DEPLOYMENT_EXISTS']));
  });
});

describe('two instances on one Postgres database', () => {
  async function pair(): Promise<[Lifeline, Lifeline]> {
    const a = tempDir();
    const first = await startEngine(a, {}, 'postgres');
    open.push(first);
    const b = tempDir();
    const second = await openLifeline({
      config: testConfig(b, {}, await dbUrlFor('postgres', a)),
      logger: quietLogger(),
    });
    await second.start();
    open.push(second);
    return [first, second];
  }

  const codes = (rs: PromiseSettledResult<unknown>[]) =>
    rs.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code);

  it('concurrent creates of one name across both: one created, the rest DEPLOYMENT_EXISTS', async () => {
    const [x, y] = await pair();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? x : y).createDeployment({ name: 'twin', plan: 'ok' }, OPERATOR),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(codes(results)).toEqual(Array(9).fill('DEPLOYMENT_EXISTS'));
  });

  it('concurrent creates of one name under one Idempotency-Key across both: one created, the twin replays it', async () => {
    const [x, y] = await pair();
    const idempotency = { scope: 'op POST /v1/deployments ', key: 'k1', requestHash: 'h' };
    const keyed = (e: Lifeline) =>
      e.createDeployment({ name: 'keyed', plan: 'ok' }, OPERATOR, { idempotency });
    const results = await Promise.allSettled([keyed(x), keyed(y)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(IdempotentReplay);
    const created = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ id: string }>)
      .value;
    expect((lost.reason as IdempotentReplay).stored).toEqual({ committed: { entity: created.id } });
  });

  it('concurrent deploys of one deployment across both: one accepted, the rest ATTEMPT_IN_PROGRESS', async () => {
    const [x, y] = await pair();
    await x.createDeployment({ name: 'shared', plan: 'short' }, OPERATOR);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? x : y).startDeploy('shared', {}, OPERATOR)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(codes(results)).toEqual(Array(9).fill('ATTEMPT_IN_PROGRESS'));
    const rows = await x.store.db.selectFrom('attempts').selectAll().execute();
    expect(rows).toHaveLength(1);
    await waitFor(async () => (await x.getDeployment('shared')).state === 'ready', 'ready');
  });
});

// The single-instance file lock exists only for SQLite (a Postgres database is shared by design).
describe('one instance per SQLite database', () => {
  it('a second engine on the same database file refuses to start and says why', async () => {
    const dir = tempDir();
    const first = await startEngine(dir);
    open.push(first);
    const other = tempDir();
    const config = { ...testConfig(other), db: `sqlite:${path.join(dir, 'lifeline.db')}` };
    const err = await openLifeline({ config, logger: quietLogger() }).catch((e) => e);
    expect(err).toBeInstanceOf(LockHeld);
    expect(String(err.message)).toMatch(/another Lifeline server is using .*lifeline\.db \(pid \d+/);
  });

  it('a second engine on a hard link to the database file is refused', async () => {
    const dir = tempDir();
    const first = await startEngine(dir);
    open.push(first);
    const other = tempDir();
    fs.linkSync(path.join(dir, 'lifeline.db'), path.join(other, 'linked.db'));
    const config = { ...testConfig(other), db: `sqlite:${path.join(other, 'linked.db')}` };
    const err = await openLifeline({ config, logger: quietLogger() }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('StartupError');
    expect(String(err.message)).toMatch(/linked\.db has 2 hard links/);
    expect(fs.existsSync(path.join(other, 'linked.db-wal'))).toBe(false); // never opened
  });

  it('instance.json, the lock files and their notes are 0600 whatever the umask', async () => {
    const dir = tempDir();
    const was = process.umask(0o022);
    try {
      open.push(await startEngine(dir));
    } finally {
      process.umask(was);
    }
    const files = [
      'instance.json',
      'lifeline.lock',
      'lifeline.lock.owner',
      'lifeline.db.lock',
      'lifeline.db.owner',
    ];
    const modes = files.map((f) => [f, (fs.statSync(path.join(dir, f)).mode & 0o777).toString(8)]);
    expect(modes).toEqual(files.map((f) => [f, '600']));
  });

  it('the lock is released on close, so a restart on the same file works', async () => {
    const dir = tempDir();
    const first = await startEngine(dir);
    await first.close();
    const second = await startEngine(dir);
    open.push(second);
    expect(second.instanceId).toBe(first.instanceId); // same data_dir, same instance
  });
});
