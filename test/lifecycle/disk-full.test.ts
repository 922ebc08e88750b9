// A full disk under a running engine (issue 9, item 8), on a small tmpfs of this file's own: writes
// answer 503 STORE_UNAVAILABLE with Retry-After (not 500 "cannot rollback"), readiness is 503, nothing
// refused is half-written, and once space is freed everything works again by itself.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.ts';
import { openLifeline } from '../../src/lifecycle/engine.ts';
import { keepDurableCommits, quietLogger, tempDir, testConfig, waitFor } from '../helpers/engine.ts';

// This suite proves durability: commits as production makes them (synchronous=FULL).
keepDurableCommits();

let mount = '';
const closers: (() => Promise<unknown>)[] = [];

beforeAll(() => {
  mount = tempDir('lifeline-full-');
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount]);
});

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  if (mount) execFileSync('umount', ['-l', mount]);
});

/** Writes `file` until the file system refuses with ENOSPC. */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 1);
      for (;;) {
        try {
          fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

describe('disk full under a running engine', () => {
  it('answers 503 with Retry-After and readiness 503 while full, writes nothing half, and recovers', async () => {
    const dir = path.join(mount, 'data');
    fs.mkdirSync(dir);
    const config = testConfig(dir);
    const engine = await openLifeline({ config, logger: quietLogger() });
    await engine.start();
    const app = await buildApp({ api: engine, config, logger: false });
    closers.push(
      () => engine.close(),
      () => app.close(),
    );
    const create = (name: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/deployments',
        payload: { name, plan: 'ok' },
      });

    expect((await create('before')).statusCode).toBe(201);
    expect((await app.inject({ url: '/v1/health/ready' })).statusCode).toBe(200);

    const filler = path.join(mount, 'filler');
    fill(filler);
    const statuses: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const res = await create(`full-${i}`);
      statuses[`full-${i}`] = res.statusCode;
      expect([201, 503], res.body).toContain(res.statusCode);
      if (res.statusCode === 503) {
        expect(JSON.parse(res.body).code).toBe('STORE_UNAVAILABLE');
        expect(res.headers['retry-after']).toBeDefined();
      }
    }
    expect(Object.values(statuses)).toContain(503);
    const ready = await app.inject({ url: '/v1/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(JSON.parse(ready.body).checks.data_dir).toBe(false);

    fs.rmSync(filler);
    await waitFor(
      async () => (await app.inject({ url: '/v1/health/ready' })).statusCode === 200,
      'ready again',
    );
    expect((await create('after')).statusCode).toBe(201);
    // What was acknowledged is there; what was refused left nothing.
    for (const [name, status] of Object.entries(statuses)) {
      const got = await app.inject({ url: `/v1/deployments/${name}` });
      expect(got.statusCode, name).toBe(status === 201 ? 200 : 404);
    }
    const events = await engine.store.db.selectFrom('events').select('deployment_id').execute();
    const deployments = await engine.store.db.selectFrom('deployments').select('id').execute();
    const ids = new Set(deployments.map((d) => d.id));
    expect(events.every((e) => e.deployment_id === null || ids.has(e.deployment_id))).toBe(true);
  });
});
