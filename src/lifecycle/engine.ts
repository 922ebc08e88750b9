// Wires one Lifeline instance together: lock, store, identity, watcher, recovery and its timers, and
// the LifelineApi the HTTP layer calls, each operation delegated to the module that owns it.
import os from 'node:os';
import fs from 'node:fs';
import pino from 'pino';
import type { LifelineConfig } from '../config/types.ts';
import { openStore, type Store } from '../store/open.ts';
import { touchInstance, upsertInstance } from '../store/instances.ts';
import type { LifelineApi } from './api.ts';
import { cancel } from './commands/cancel.ts';
import { Checks } from './commands/check.ts';
import { createDeployment } from './commands/create.ts';
import { deleteDeployment } from './commands/delete.ts';
import { startDeploy } from './commands/deploy.ts';
import { resolve } from './commands/resolve.ts';
import { teardown } from './commands/teardown.ts';
import type { Ctx } from './context.ts';
import { IdempotencyKeys } from './idempotency.ts';
import { nowIso } from './ids.ts';
import { loadInstanceId } from './instance.ts';
import { OutageLog } from './outage.ts';
import { lockSqlite, type DbLock } from './lock.ts';
import * as queries from './queries.ts';
import { readiness } from './readiness.ts';
import { reconcile } from './recovery.ts';
import { EventBus } from './tx.ts';
import { Watcher } from './watcher.ts';

export interface LifelineOptions {
  config: LifelineConfig;
  logger?: pino.Logger;
  /** What /v1/instances reports; `server` for `lifeline serve`. */
  role?: string;
  /** The port the HTTP server listens on, when there is one. */
  port?: number | null;
}

export class Lifeline implements LifelineApi {
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> | null = null;
  private closed = false;
  private readonly checks: Checks;
  private readonly keys: IdempotencyKeys;

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
    private lock: DbLock | null,
  ) {
    this.checks = new Checks(ctx);
    this.keys = new IdempotencyKeys(ctx.store.db);
  }

  get store(): Store {
    return this.ctx.store;
  }

  get instanceId(): string {
    return this.ctx.instanceId;
  }

  // ---- LifelineApi: reads -----------------------------------------------------------------------

  listPlans: LifelineApi['listPlans'] = () => queries.listPlans(this.ctx);
  getDeployment: LifelineApi['getDeployment'] = (ref) => queries.getDeployment(this.ctx, ref);
  listDeployments: LifelineApi['listDeployments'] = (q) => queries.listDeployments(this.ctx, q);
  listAttempts: LifelineApi['listAttempts'] = (ref, q) => queries.listAttempts(this.ctx, ref, q);
  getAttempt: LifelineApi['getAttempt'] = (id) => queries.getAttempt(this.ctx, id);
  readAttemptLog: LifelineApi['readAttemptLog'] = (id, offset, opts) =>
    queries.readAttemptLog(this.ctx, id, offset, opts);
  listTransitions: LifelineApi['listTransitions'] = (ref) => queries.listTransitions(this.ctx, ref);
  listEvents: LifelineApi['listEvents'] = (q) => queries.listEvents(this.ctx, q);
  deploymentIdFor: LifelineApi['deploymentIdFor'] = (ref) => queries.deploymentIdFor(this.ctx, ref);
  onEvents: LifelineApi['onEvents'] = (listener) => this.ctx.bus.on(listener);
  listInstances: LifelineApi['listInstances'] = () => queries.listInstances(this.ctx);
  readiness: LifelineApi['readiness'] = () => readiness(this.ctx);

  // ---- LifelineApi: writes ----------------------------------------------------------------------

  createDeployment: LifelineApi['createDeployment'] = (input, actor) =>
    createDeployment(this.ctx, input, actor);
  deleteDeployment: LifelineApi['deleteDeployment'] = (ref, opts, actor, w) =>
    deleteDeployment(this.ctx, ref, opts, actor, w);
  startDeploy: LifelineApi['startDeploy'] = (ref, input, actor, w) =>
    startDeploy(this.ctx, this.watcher, ref, input, actor, w);
  teardown: LifelineApi['teardown'] = (ref, input, actor, w) =>
    teardown(this.ctx, this.watcher, ref, input, actor, w);
  cancel: LifelineApi['cancel'] = (ref, actor, w) => cancel(this.ctx, this.watcher, ref, actor, w);
  resolve: LifelineApi['resolve'] = (ref, input, actor, w) => resolve(this.ctx, ref, input, actor, w);
  check: LifelineApi['check'] = (ref, actor, w) => this.checks.start(ref, actor, w);

  // ---- LifelineApi: Idempotency-Key records -----------------------------------------------------

  idempotencyLookup: LifelineApi['idempotencyLookup'] = (scope, key) => this.keys.lookup(scope, key);
  idempotencyClaim: LifelineApi['idempotencyClaim'] = (scope, key, hash) => this.keys.claim(scope, key, hash);
  idempotencySave: LifelineApi['idempotencySave'] = (scope, key, res) => this.keys.save(scope, key, res);
  idempotencyRelease: LifelineApi['idempotencyRelease'] = (scope, key) => this.keys.release(scope, key);

  // ---- the instance -----------------------------------------------------------------------------

  /** Recovers what the last run left (adopt, finish, or mark unknown), then keeps watching. */
  async start(): Promise<void> {
    await this.reconcileNow();
    this.watcher.start();
    const { reapIntervalMs, leaseTtlMs } = this.ctx.config;
    const { outage } = this.ctx;
    const every = (ms: number, what: string, fn: () => Promise<void>) => {
      const t = setInterval(() => {
        fn().then(
          () => outage.ok(),
          (err) => outage.failed(what, err),
        );
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(reapIntervalMs, 'reconcile', () => this.reconcileNow());
    every(Math.max(250, Math.floor(leaseTtlMs / 3)), 'heartbeat', () =>
      touchInstance(this.ctx.store.db, this.ctx.instanceId, nowIso()),
    );
  }

  /** Resolves once the watcher has made a full pass over the attempts it watches. */
  settle(): Promise<void> {
    return this.watcher.settle();
  }

  /** One reconcile pass; concurrent callers share it. */
  reconcileNow(): Promise<void> {
    if (!this.reconciling) {
      this.reconciling = reconcile(this.ctx, this.watcher).finally(() => {
        this.reconciling = null;
      });
    }
    return this.reconciling;
  }

  /** Stops watching and closes the store. Running attempts keep running; the next start recovers them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.watcher.close();
    await this.reconciling?.catch(() => undefined);
    await this.ctx.store.close();
    this.lock?.release();
  }
}

export async function openLifeline(opts: LifelineOptions): Promise<Lifeline> {
  const { config } = opts;
  const log = opts.logger ?? pino({ level: process.env.LIFELINE_LOG_LEVEL ?? 'info' });
  // Run dirs hold unmasked output and params: the data dir is owner-only (SPEC §8.9, docs/security.md).
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(config.dataDir, 0o700);
  const instanceId = loadInstanceId(config.dataDir);
  let lock: DbLock | null = null;
  if (config.db.startsWith('sqlite:')) {
    const file = config.db.slice('sqlite:'.length);
    fs.mkdirSync(new URL('.', `file://${file}`).pathname, { recursive: true });
    lock = lockSqlite(file, { pid: process.pid, host: os.hostname(), instance: instanceId, since: nowIso() });
  }
  const outage = new OutageLog(log);
  let store: Store;
  try {
    store = await openStore(config.db, {
      durable: config.durableCommits,
      pool: config.database,
      onConnectionError: (err) => outage.failed('database connection', err),
    });
  } catch (err) {
    lock?.release();
    throw err;
  }
  const at = nowIso();
  await upsertInstance(store.db, {
    id: instanceId,
    host: os.hostname(),
    port: opts.port ?? null,
    role: opts.role ?? 'server',
    data_dir: config.dataDir,
    pid: process.pid,
    started_at: at,
    last_seen_at: at,
  });
  const ctx: Ctx = { store, bus: new EventBus(), config, instanceId, log, outage };
  return new Lifeline(ctx, new Watcher(ctx), lock);
}
