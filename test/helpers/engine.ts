// Builds a real engine on a throwaway data dir and database (SQLite or Postgres), with the fixture plans.
import path from 'node:path';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { LifelineConfig } from '../../src/config/types.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { keepDurableCommits, tempConfig, tempDir } from './config.ts';
import { dbUrlFor, type TestDialect } from './dialect.ts';

export { keepDurableCommits, tempDir };
export { DIALECTS, dbUrlFor, type TestDialect } from './dialect.ts';

export const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/plans');

export function fixturePlans(): Record<string, unknown> {
  const p = (f: string) => [path.join(FIXTURES, f)];
  return {
    ctl: { deploy: p('ctl.sh'), teardown: p('ctl.sh'), cancel_grace: '1s' },
    ok: { deploy: p('ok.sh'), teardown: p('ok.sh'), check: p('check.sh') },
    fail: { deploy: p('fail.sh'), teardown: p('fail.sh') },
    sleep: { deploy: p('sleep.sh'), teardown: p('ok.sh'), cancel_grace: '2s', env: { SLEEP_SECONDS: '30' } },
    short: { deploy: p('sleep.sh'), teardown: p('sleep.sh'), env: { SLEEP_SECONDS: '0.3' } },
    stubborn: { deploy: p('stubborn.sh'), teardown: p('ok.sh'), cancel_grace: '500ms' },
    slowtimeout: { deploy: p('sleep.sh'), teardown: p('ok.sh'), timeout: '500ms', cancel_grace: '500ms' },
    lines: { deploy: p('lines.sh'), teardown: p('ok.sh'), env: { LINES_COUNT: '10000' } },
    events: { deploy: p('events.sh'), teardown: p('ok.sh') },
    missing: { deploy: [path.join(FIXTURES, 'does-not-exist.sh')], teardown: p('ok.sh') },
    secret: {
      deploy: p('params.sh'),
      teardown: p('ok.sh'),
      params: {
        type: 'object',
        properties: {
          password: { type: 'string', writeOnly: true },
          replicas: { type: 'integer', minimum: 1 },
        },
        additionalProperties: false,
      },
    },
  };
}

/** `db` defaults to the SQLite file in `dir`; pass dbUrlFor(dialect, dir) for another store. */
export function testConfig(dir: string, extra: Record<string, unknown> = {}, db?: string): LifelineConfig {
  const config = tempConfig(dir, {
    plans: fixturePlans(),
    dataDir: dir,
    extra: { start_deadline: '2s', ...(db !== undefined ? { db } : {}), ...extra },
  });
  return configFromObject(config, { file: null, baseDir: dir, env: {} });
}

export const quietLogger = () => pino({ level: process.env.LIFELINE_TEST_LOG ?? 'silent' });

/** The config of a test engine on `dialect`: the data dir's own database there. */
export async function dialectConfig(
  dialect: TestDialect,
  dir: string,
  extra: Record<string, unknown> = {},
): Promise<LifelineConfig> {
  return testConfig(dir, extra, await dbUrlFor(dialect, dir));
}

export async function startEngine(
  dir: string,
  extra: Record<string, unknown> = {},
  dialect: TestDialect = 'sqlite',
): Promise<Lifeline> {
  const engine = await openLifeline({
    config: await dialectConfig(dialect, dir, extra),
    logger: quietLogger(),
  });
  await engine.start();
  return engine;
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor<T>(
  fn: () => Promise<T> | T,
  what: string,
  timeoutMs = 20_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const ADMIN = { name: 'alice', role: 'admin' } as const;
export const OPERATOR = { name: 'ci', role: 'operator' } as const;
