// An instance whose own clock is ten minutes fast or slow (issue 17.7), on both stores: the database's
// clock is the only one any due time or lease is judged by. Retries start neither early nor late, a
// webhook's lease and backoff hold, and pruning runs. The instance's wall clock is shifted in-process
// (Date.now), the way a skewed machine's would be; the database keeps the real one.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { selectDbNow } from '../../src/store/instances.ts';
import { tempConfig } from '../helpers/config.ts';
import {
  dbUrlFor,
  dialectConfig,
  DIALECTS,
  FIXTURES,
  fixturePlans,
  OPERATOR,
  quietLogger,
  startEngine,
  tempDir,
  waitFor,
} from '../helpers/engine.ts';

const p = (f: string) => [path.join(FIXTURES, f)];
/**
 * The cap of the flaky plan's retry delay (full jitter below it). A second: ten minutes of skew either
 * way is still 600 times that, so a schedule on the instance's clock falls far outside it.
 */
const RETRY_CAP_MS = 1_000;
const plans = {
  ...fixturePlans(),
  // Fails once, then succeeds; its retry waits up to RETRY_CAP_MS.
  flaky: {
    deploy: p('flaky.sh'),
    teardown: p('ok.sh'),
    env: { FLAKY_FAILS: '1' },
    retry: { max: 3, backoff: `${RETRY_CAP_MS}ms`, max_backoff: `${RETRY_CAP_MS}ms` },
  },
  // Fails; its retry is far away (moved by the test).
  later: { deploy: p('fail.sh'), teardown: p('ok.sh'), retry: { max: 3, backoff: '20d' } },
};

const SKEWS = [10 * 60_000, -10 * 60_000];
const realNow = Date.now.bind(Date);

let engines: Lifeline[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const e of engines.splice(0)) await e.close();
});

// A webhook receiver: counts deliveries, answers `status`.
let receiver: http.Server;
let hookUrl = '';
let deliveries = 0;
let status = 204;
beforeAll(async () => {
  receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      deliveries++;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});
afterAll(() => new Promise((r) => receiver.close(r)));
beforeEach(() => {
  deliveries = 0;
  status = 204;
});

const HOOK_TIMEOUT_MS = 2_000;
/** An instance whose webhook lease another holds looks again every third of it. */
const LEASE_TTL_MS = 1_500;
/**
 * How long a webhook held off (a peer's live lease, a backoff) is watched for a delivery that must not
 * come. The worker looks at once when started and again when the deployment's event wakes it, so an
 * instance judging by its own clock, ten minutes fast, would claim and deliver within milliseconds.
 */
const HELD_OFF_MS = 750;

const started = async (e: Lifeline, name: string) =>
  (await e.listAttempts(name, { limit: 10 })).items.filter((a) => a.requested_by === 'retry').length;

const dbNow = (e: Lifeline) => selectDbNow(e.store.db, e.store.dialect);

describe.each(DIALECTS)('an instance whose clock is off, on %s', (dialect) => {
  async function open(extra: Record<string, unknown> = {}): Promise<Lifeline> {
    const e = await startEngine(tempDir(), { plans, reap_interval: '60s', ...extra }, dialect);
    engines.push(e);
    return e;
  }

  /** An engine with one webhook, opened (migrated) but not started: the test sets its row first. */
  async function openWithHook(): Promise<Lifeline> {
    const dir = tempDir();
    const config = configFromObject(
      tempConfig(dir, {
        plans: fixturePlans(),
        dataDir: dir,
        extra: {
          db: await dbUrlFor(dialect, dir),
          reap_interval: '60s',
          lease_ttl: `${LEASE_TTL_MS}ms`,
          webhooks: [
            {
              name: 'hook',
              url: hookUrl,
              secret_env: 'WH',
              timeout: `${HOOK_TIMEOUT_MS}ms`,
              events: ['deployment_created'],
            },
          ],
        },
      }),
      { file: null, baseDir: dir, env: { WH: `whsec_${Buffer.alloc(24, 7).toString('base64')}` } },
    );
    const e = await openLifeline({ config, logger: quietLogger() });
    engines.push(e);
    return e;
  }

  /** The webhook's row as another instance left it (times relative to the database's now). */
  async function peerRow(e: Lifeline, set: { leaseInMs?: number; nextInMs?: number; failures?: number }) {
    const now = await dbNow(e);
    const iso = (ms?: number) => (ms === undefined ? null : new Date(now + ms).toISOString());
    await e.store.db
      .insertInto('webhooks')
      .values({
        name: 'hook',
        delivered_seq: 0,
        enabled: 1,
        failures: set.failures ?? 0,
        updated_at: new Date(now).toISOString(),
        lease_owner: set.leaseInMs === undefined ? null : 'ins_peer',
        lease_until: iso(set.leaseInMs),
        next_attempt_at: iso(set.nextInMs),
      })
      .execute();
  }

  const hookRow = (e: Lifeline) =>
    e.store.db.selectFrom('webhooks').selectAll().where('name', '=', 'hook').executeTakeFirstOrThrow();

  /** Moves the peer's lease end or the backoff's end to `ms` from the database's now. */
  async function endsIn(e: Lifeline, column: 'lease_until' | 'next_attempt_at', ms: number) {
    const at = new Date((await dbNow(e)) + ms).toISOString();
    await e.store.db
      .updateTable('webhooks')
      .set(column === 'lease_until' ? { lease_until: at } : { next_attempt_at: at })
      .where('name', '=', 'hook')
      .execute();
  }

  describe.each(SKEWS)('by %d ms', (skew) => {
    beforeEach(() => {
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    });

    it('schedules a retry on the database clock and starts it when due there', async () => {
      const engine = await open();
      await engine.createDeployment({ name: 'fl', plan: 'flaky' }, OPERATOR);
      await engine.startDeploy('fl', {}, OPERATOR);
      const dep = await waitFor(async () => {
        const d = await engine.getDeployment('fl');
        return d.retry || d.state === 'deploying' ? d : null;
      }, 'the schedule (or its start)');
      if (dep.retry) {
        // Due within the cap of the database's now, not ten minutes off it.
        const wait = Date.parse(dep.retry.at) - (await dbNow(engine));
        expect(wait).toBeLessThanOrEqual(RETRY_CAP_MS);
        expect(wait).toBeGreaterThan(-5_000);
      }
      await waitFor(async () => (await engine.getDeployment('fl')).state === 'ready', 'the retry', 15_000);
    });

    it('does not start a retry before the database clock says it is due, and starts it then', async () => {
      const engine = await open();
      await engine.createDeployment({ name: 'lt', plan: 'later' }, OPERATOR);
      await engine.startDeploy('lt', {}, OPERATOR);
      await waitFor(async () => (await engine.getDeployment('lt')).retry, 'the schedule');
      const dueIn = async (ms: number) => {
        const due = (await dbNow(engine)) + ms;
        await engine.store.db
          .updateTable('deployments')
          .set({ retry_at: new Date(due).toISOString() })
          .execute();
        return due;
      };
      // Due in a minute on the database's clock: ten minutes ahead, this instance would start it now.
      await dueIn(60_000);
      expect(await engine.startDueRetries()).toBe(0);
      expect(await started(engine, 'lt')).toBe(0);
      // Due in a second.
      const due = await dueIn(1_000);
      // Started by a pass or by the timer one armed: first seen when the database's clock is past due.
      await waitFor(
        async () => (await engine.startDueRetries()) + (await started(engine, 'lt')) > 0,
        'the retry to start',
        10_000,
      );
      expect(await dbNow(engine)).toBeGreaterThanOrEqual(due);
    });

    it("takes no live lease of another instance's webhook, and holds its own on the database clock", async () => {
      const engine = await openWithHook();
      // A minute on the database's clock: live through the watch below however slowly the engine starts.
      await peerRow(engine, { leaseInMs: 60_000 });
      await engine.start();
      await engine.createDeployment({ name: 'wh', plan: 'ok' }, OPERATOR);
      await new Promise((r) => setTimeout(r, HELD_OFF_MS));
      expect(deliveries).toBe(0);
      expect((await hookRow(engine)).lease_owner).toBe('ins_peer');
      // Once the peer's lease ran out on the database's clock (ten minutes slow, this instance would
      // still see it live), this instance delivers.
      await endsIn(engine, 'lease_until', 200);
      await waitFor(() => deliveries > 0, 'the delivery', 10_000);
      const row = await hookRow(engine);
      const now = await dbNow(engine);
      expect(row.lease_owner).toBe(engine.instanceId);
      const left = Date.parse(row.lease_until!) - now;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThanOrEqual(HOOK_TIMEOUT_MS + LEASE_TTL_MS);
    });

    it('waits out a backoff on the database clock, and writes its own backoff there', async () => {
      const engine = await openWithHook();
      // A minute on the database's clock: not over during the watch below however slowly the engine starts.
      await peerRow(engine, { nextInMs: 60_000, failures: 1 });
      status = 500;
      await engine.start();
      await engine.createDeployment({ name: 'wh', plan: 'ok' }, OPERATOR);
      await new Promise((r) => setTimeout(r, HELD_OFF_MS));
      expect(deliveries).toBe(0);
      // The backoff ends on the database's clock (ten minutes slow, this instance would wait on).
      await endsIn(engine, 'next_attempt_at', 200);
      await waitFor(() => deliveries > 0, 'the delivery after the backoff', 10_000);
      const row = await waitFor(async () => {
        const r = await hookRow(engine);
        return Number(r.failures) >= 2 && r.next_attempt_at ? r : null;
      }, 'the failure recorded');
      // Its next try waits a backoff of seconds from the database's now, not ten minutes either way.
      const wait = Date.parse(row.next_attempt_at!) - (await dbNow(engine));
      expect(Math.abs(wait)).toBeLessThan(60_000);
    });

    it('prunes logs, holding the prune lease on the database clock', async () => {
      const dir = tempDir();
      const leases: number[] = [];
      let engine: Lifeline | null = null;
      const config = await dialectConfig(dialect, dir, {
        reap_interval: '60s',
        lease_ttl: `${LEASE_TTL_MS}ms`,
        retention: { logs: '30d' },
      });
      engine = await openLifeline({
        config,
        logger: quietLogger(),
        retentionHooks: {
          // Inside each batch: how long the lease still runs on the database's clock.
          onBatch: async () => {
            const row = await engine!.store.db.selectFrom('retention').selectAll().executeTakeFirstOrThrow();
            if (row.lease_until) leases.push(Date.parse(row.lease_until) - (await dbNow(engine!)));
          },
        },
      });
      engines.push(engine);
      await engine.start();
      await engine.createDeployment({ name: 'pr', plan: 'ok' }, OPERATOR);
      const att = await engine.startDeploy('pr', {}, OPERATOR);
      await waitFor(async () => (await engine.getAttempt(att.id)).state === 'succeeded', 'the end');
      await engine.store.db
        .updateTable('attempts')
        .set({ ended_at: new Date(realNow() - 40 * 86_400_000).toISOString() })
        .where('id', '=', att.id)
        .execute();
      await engine.retention.pass();
      const archived = await engine.store.db
        .selectFrom('log_archive')
        .select('pruned_at')
        .where('attempt_id', '=', att.id)
        .executeTakeFirst();
      expect(archived?.pruned_at).toBeTruthy();
      expect(leases.length).toBeGreaterThan(0);
      for (const left of leases) {
        expect(left).toBeGreaterThan(0);
        expect(left).toBeLessThanOrEqual(LEASE_TTL_MS);
      }
    });
  });
});
