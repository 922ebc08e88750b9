// Wires one Lifeline instance together: lock, store, identity, watcher, recovery and its timers.
import os from 'node:os';
import fs from 'node:fs';
import pino from 'pino';
import type { LifelineConfig } from '../config/types.ts';
import { openStore, type Store } from '../store/open.ts';
import { touchInstance, upsertInstance } from '../store/instances.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';
import { loadInstanceId } from './instance.ts';
import { OutageLog } from './outage.ts';
import { lockSqlite, type DbLock } from './lock.ts';
import { reconcile } from './recovery.ts';
import { LifecycleService } from './service.ts';
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

export class Lifeline extends LifecycleService {
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> | null = null;
  private closed = false;

  constructor(
    ctx: Ctx,
    watcher: Watcher,
    private lock: DbLock | null,
  ) {
    super(ctx, watcher);
  }

  get store(): Store {
    return this.ctx.store;
  }

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
  fs.mkdirSync(config.dataDir, { recursive: true });
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
