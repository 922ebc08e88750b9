// Wires one Lifeline instance together: lock, store, identity, watcher, recovery and its timers, and
// the LifelineApi the HTTP layer calls, each operation delegated to the module that owns it.
import os from 'node:os';
import fs from 'node:fs';
import pino from 'pino';
import type { LifelineConfig } from '../config/types.ts';
import { openStore, type Store } from '../store/open.ts';
import { EventListener } from '../store/listen.ts';
import type { LifelineApi } from './api.ts';
import { cancel } from './commands/cancel.ts';
import { Checks } from './commands/check.ts';
import { createDeployment } from './commands/create.ts';
import { applyFile, planApply } from './apply.ts';
import { deleteDeployment } from './commands/delete.ts';
import { createStack, deleteStack, updateStack } from './commands/stacks.ts';
import * as stacks from './stacks.ts';
import { startDeploy } from './commands/deploy.ts';
import { rollback } from './commands/rollback.ts';
import { resolve } from './commands/resolve.ts';
import { teardown } from './commands/teardown.ts';
import type { Ctx } from './context.ts';
import { IdempotencyKeys } from './idempotency.ts';
import { Metrics } from './metrics.ts';
import { Lease } from './lease.ts';
import { nowIso } from './ids.ts';
import { loadInstanceId } from './instance.ts';
import { OutageLog } from './outage.ts';
import { lockDataDir, lockSqlite, type DbLock } from './lock.ts';
import * as queries from './queries.ts';
import * as freezes from './freezes.ts';
import * as approval from './commands/approval.ts';
import { FreezeWatch } from './freezes-watch.ts';
import { readiness } from './readiness.ts';
import { reconcile, ReconcileCursor } from './recovery.ts';
import { RetryStarter } from './retry.ts';
import { RunAdvancer } from './runs/advance.ts';
import { cancelStackRun, getRun, listRuns, startStackRun } from './runs/commands.ts';
import { DriftScheduler } from './drift.ts';
import { EventBus } from './event-bus.ts';
import { logTransitions } from './trace.ts';
import { Watcher } from './watcher.ts';
import { GateKeeper } from './gates/keeper.ts';
import { createLauncher, type Launcher } from '../runner/launcher.ts';
import { ensurePrivateDir } from '../runner/owned.ts';
import { Webhooks } from './webhooks/service.ts';
import { Retention, type RetentionHooks } from './retention.ts';

export interface LifelineOptions {
  config: LifelineConfig;
  logger?: pino.Logger;
  /** What /v1/instances reports; `server` for `lifeline serve`. */
  role?: string;
  /** The port the HTTP server listens on, when there is one. */
  port?: number | null;
  /** Observers of the retention batches (tests). */
  retentionHooks?: RetentionHooks;
  /** Told each attempt a reconcile pass looks at (tests: the work of a pass). */
  onReconcileLook?: (attemptId: string) => void;
  /** Stands between the watcher and the configured launcher (tests: slow or stalled starts). */
  wrapLauncher?: (launcher: Launcher) => Launcher;
}

export class Lifeline implements LifelineApi {
  private timers: NodeJS.Timeout[] = [];
  private reconciling: Promise<void> | null = null;
  private readonly reconcileCursor: ReconcileCursor;
  private closed = false;
  private readonly checks: Checks;
  private readonly keys: IdempotencyKeys;
  readonly metrics: Metrics;
  private readonly webhooks: Webhooks;
  private readonly retries: RetryStarter;
  /** Stack runs (SPEC §12.4): advanced on this instance's commits and in every reconcile pass. */
  readonly runs: RunAdvancer;
  /** Scheduled checks and self-heals (SPEC §14.2). */
  readonly drift: DriftScheduler;
  /** SPEC §11 pruning; `pass()` runs one now. */
  readonly retention: Retention;
  /** SPEC §13.2/§13.3: opens what a lifted or ended freeze, or an answered approval, let through. */
  readonly freezeWatch: FreezeWatch;

  constructor(
    private readonly ctx: Ctx,
    private readonly watcher: Watcher,
    private readonly launcher: Launcher,
    private locks: DbLock[],
    /** On Postgres: wake-ups for commits made by other instances. */
    private listener: EventListener | null = null,
    retentionHooks: RetentionHooks = {},
    onReconcileLook?: (attemptId: string) => void,
    /** SPEC §13: opens waiting attempts and launches them. */
    readonly gates: GateKeeper = new GateKeeper(ctx, watcher),
  ) {
    this.reconcileCursor = new ReconcileCursor(onReconcileLook);
    this.checks = new Checks(ctx);
    this.keys = new IdempotencyKeys(ctx.store.db);
    this.metrics = new Metrics(ctx);
    this.retries = new RetryStarter(ctx, watcher);
    this.runs = new RunAdvancer(ctx, watcher);
    this.drift = new DriftScheduler(ctx, watcher);
    ctx.bus.onCommit = (events, traceId) => {
      logTransitions(ctx.log, events, traceId);
      this.retries.noteEvents(events);
      this.runs.noteEvents(events);
      this.drift.noteEvents(events);
      this.gates.noteEvents(events);
      this.freezeWatch.noteEvents(events);
    };
    this.webhooks = new Webhooks(ctx);
    this.webhooks.register(this.metrics.registry);
    this.retention = new Retention(ctx, retentionHooks);
    this.freezeWatch = new FreezeWatch(ctx, watcher);
    ctx.freezesChanged = () => this.freezeWatch.wake();
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
  listWaitingAttempts: LifelineApi['listWaitingAttempts'] = (q) => queries.listWaitingAttempts(this.ctx, q);
  readAttemptLog: LifelineApi['readAttemptLog'] = (id, offset, opts) =>
    queries.readAttemptLog(this.ctx, id, offset, opts);
  listTransitions: LifelineApi['listTransitions'] = (ref) => queries.listTransitions(this.ctx, ref);
  listEvents: LifelineApi['listEvents'] = (q) => queries.listEvents(this.ctx, q);
  listPhases: LifelineApi['listPhases'] = (id) => queries.listPhases(this.ctx, id);
  deploymentIdFor: LifelineApi['deploymentIdFor'] = (ref) => queries.deploymentIdFor(this.ctx, ref);
  checkEventCursor: LifelineApi['checkEventCursor'] = (after, field) =>
    queries.checkEventCursor(this.ctx, after, field);
  onEvents: LifelineApi['onEvents'] = (listener) => this.ctx.bus.on(listener);
  listInstances: LifelineApi['listInstances'] = () => queries.listInstances(this.ctx);
  readiness: LifelineApi['readiness'] = () => readiness(this.ctx);
  scrapeMetrics: LifelineApi['scrapeMetrics'] = () => this.metrics.scrape();
  streamOpened: LifelineApi['streamOpened'] = () => this.metrics.streamOpened();
  listWebhooks: LifelineApi['listWebhooks'] = () => this.webhooks.list();
  redeliverWebhook: LifelineApi['redeliverWebhook'] = (name, fromSeq) =>
    this.webhooks.redeliver(name, fromSeq);
  approveAttempt: LifelineApi['approveAttempt'] = (id, input, actor, w) =>
    approval.approve(this.ctx, this.watcher, id, input, actor, w);
  rejectAttempt: LifelineApi['rejectAttempt'] = (id, input, actor, w) =>
    approval.reject(this.ctx, id, input, actor, w);
  listFreezes: LifelineApi['listFreezes'] = () => freezes.listFreezes(this.ctx);
  createFreeze: LifelineApi['createFreeze'] = (input, actor) => freezes.createFreeze(this.ctx, input, actor);
  deleteFreeze: LifelineApi['deleteFreeze'] = (name, actor) => freezes.deleteFreeze(this.ctx, name, actor);

  // ---- LifelineApi: writes ----------------------------------------------------------------------

  createDeployment: LifelineApi['createDeployment'] = (input, actor, w) =>
    createDeployment(this.ctx, input, actor, w);
  createStack: LifelineApi['createStack'] = (spec, actor, w) => createStack(this.ctx, spec, actor, w);
  updateStack: LifelineApi['updateStack'] = (name, spec, actor, w) =>
    updateStack(this.ctx, name, spec, actor, w);
  deleteStack: LifelineApi['deleteStack'] = (name, opts, actor, w) =>
    deleteStack(this.ctx, name, opts, actor, w);
  getStack: LifelineApi['getStack'] = (ref) => stacks.getStack(this.ctx, ref);
  listStacks: LifelineApi['listStacks'] = (q) => stacks.listStacks(this.ctx, q);
  stackIdFor: LifelineApi['stackIdFor'] = (ref) => stacks.stackIdFor(this.ctx, ref);
  startStackRun: LifelineApi['startStackRun'] = (name, kind, input, actor, w) =>
    startStackRun(this.ctx, this.runs, name, kind, input, actor, w);
  cancelStackRun: LifelineApi['cancelStackRun'] = (name, actor, w) =>
    cancelStackRun(this.ctx, this.runs, name, actor, w);
  listRuns: LifelineApi['listRuns'] = (name, q) => listRuns(this.ctx, name, q);
  getRun: LifelineApi['getRun'] = (id) => getRun(this.ctx, id);
  deleteDeployment: LifelineApi['deleteDeployment'] = (ref, opts, actor, w) =>
    deleteDeployment(this.ctx, ref, opts, actor, w);
  planApply: LifelineApi['planApply'] = (input) => planApply(this.ctx, input);
  apply: LifelineApi['apply'] = (input, actor, w) => applyFile(this.ctx, this, input, actor, w);
  startDeploy: LifelineApi['startDeploy'] = (ref, input, actor, w) =>
    startDeploy(this.ctx, this.watcher, ref, input, actor, w);
  rollback: LifelineApi['rollback'] = (ref, input, actor, w) =>
    rollback(this.ctx, this.watcher, ref, input, actor, w);
  teardown: LifelineApi['teardown'] = (ref, input, actor, w) =>
    teardown(this.ctx, this.watcher, ref, input, actor, w);
  cancel: LifelineApi['cancel'] = (ref, actor, w) => cancel(this.ctx, this.watcher, ref, actor, w);
  resolve: LifelineApi['resolve'] = (ref, input, actor, w) => resolve(this.ctx, ref, input, actor, w);
  check: LifelineApi['check'] = (ref, actor, w) => this.checks.start(ref, actor, w);

  // ---- LifelineApi: Idempotency-Key records -----------------------------------------------------

  idempotencyLookup: LifelineApi['idempotencyLookup'] = (key) => this.keys.lookup(key);
  idempotencySave: LifelineApi['idempotencySave'] = (key, res) => this.keys.save(key, res);

  // ---- the instance -----------------------------------------------------------------------------

  /** Recovers what the last run left (adopt, finish, or mark unknown), then keeps watching. */
  async start(): Promise<void> {
    // The watcher's and the lease's timers are unref'd; while the first pass waits on them (a grace
    // period, say) nothing else may be keeping the process alive yet: hold it open until started.
    const holdOpen = setInterval(() => undefined, 60_000);
    try {
      await this.startParts();
    } finally {
      clearInterval(holdOpen);
    }
  }

  private async startParts(): Promise<void> {
    await this.listener?.start();
    const { outage } = this.ctx;
    // Heartbeats before the first reconcile: that pass waits for the watcher to settle, which can take a
    // cancel_grace (stopping a stopped plan's leftovers) and so outlast the lease; with no heartbeat the
    // lease lapsed, the watcher stopped acting and the start never returned.
    this.ctx.lease.startHeartbeat(
      async (beat) => {
        // Re-registered after a lapse: re-claim (under the new epoch) what is still ours. Not awaited:
        // the next heartbeat waits for this one, and a pass that waits on the watcher outlasts the lease.
        if (beat === 'reregistered') void this.reconcileNow().catch((err) => outage.failed('reconcile', err));
        outage.ok();
      },
      (err) => outage.failed('heartbeat', err),
    );
    await this.reconcileNow();
    this.watcher.start();
    await this.webhooks.start();
    // Retries that fell due while no instance ran (or were scheduled by one that is gone).
    await this.retries.runDue().catch((err) => this.ctx.outage.failed('retry', err));
    // Runs that moved (or lost their instance) while no instance ran.
    await this.runs.pass().catch((err) => this.ctx.outage.failed('stack run', err));
    await this.drift.runDue().catch((err) => this.ctx.outage.failed('drift', err));
    // Slots freed and waits expired while no instance ran.
    await this.gates.pass();
    await this.freezeWatch.pass();
    this.retention.start();
    const { reapIntervalMs } = this.ctx.config;
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
    every(reapIntervalMs, 'reconcile', async () => {
      await this.reconcileNow();
      await this.retries.runDue();
      await this.runs.pass();
      await this.drift.runDue();
      await this.gates.pass();
      await this.freezeWatch.pass();
    });
  }

  /** Resolves once the watcher has made a full pass over the attempts it watches. */
  settle(): Promise<void> {
    return this.watcher.settle();
  }

  /** One reconcile pass; concurrent callers share it. */
  reconcileNow(): Promise<void> {
    if (!this.reconciling) {
      const began = performance.now();
      this.reconciling = reconcile(this.ctx, this.watcher, this.reconcileCursor).finally(() => {
        this.metrics.observePass((performance.now() - began) / 1000);
        this.reconciling = null;
      });
    }
    return this.reconciling;
  }

  /** Starts the scheduled retries that are due (SPEC §9.1); how many this instance started. */
  startDueRetries(): Promise<number> {
    return this.retries.runDue();
  }

  /** What a close in progress waits on: a shutdown that hangs names its step (logs, test harnesses). */
  closingStep: string | null = null;

  private async closeStep(step: string, run: () => unknown): Promise<void> {
    this.closingStep = step;
    const began = Date.now();
    const slow = setInterval(
      () => this.ctx.log.warn({ step, waited_ms: Date.now() - began }, 'shutdown still waiting'),
      10_000,
    );
    try {
      await run();
    } finally {
      clearInterval(slow);
    }
  }

  /** Stops watching and closes the store. Running attempts keep running; the next start recovers them. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    // Not awaited: a heartbeat stuck on an unreachable database must not hold the close up.
    void this.ctx.lease.stopHeartbeat();
    this.metrics.close();
    await this.closeStep('retries', () => this.retries.close());
    await this.closeStep('runs', () => this.runs.close());
    await this.closeStep('drift', () => this.drift.close());
    await this.closeStep('gates', () => this.gates.close());
    await this.closeStep('freezes', () => this.freezeWatch.close());
    await this.closeStep('webhooks', () => this.webhooks.close());
    await this.closeStep('retention', () => this.retention.close());
    await this.closeStep('listener', () => this.listener?.stop());
    await this.closeStep('watcher', () => this.watcher.close());
    this.launcher.close();
    await this.closeStep('reconcile', () => this.reconciling?.catch(() => undefined));
    await this.closeStep('store', () => this.ctx.store.close());
    this.closingStep = null;
    for (const l of this.locks) l.release();
  }
}

export async function openLifeline(opts: LifelineOptions): Promise<Lifeline> {
  const { config } = opts;
  const log = opts.logger ?? pino({ level: process.env.LIFELINE_LOG_LEVEL ?? 'info' });
  // Run dirs hold unmasked output and params: the data dir is owner-only (SPEC §8.9, docs/security.md).
  // Refused when another user owns it: they could read its secrets and bind the runner's socket.
  ensurePrivateDir(config.dataDir, 'data_dir');
  // The data dir first, on every store: it holds the instance id, so a second server on it would act
  // as the same instance on the same attempts.
  const locks: DbLock[] = [
    lockDataDir(config.dataDir, { pid: process.pid, host: os.hostname(), since: nowIso() }),
  ];
  const release = () => locks.forEach((l) => l.release());
  let instanceId: string;
  try {
    instanceId = loadInstanceId(config.dataDir);
    if (config.db.startsWith('sqlite:')) {
      const file = config.db.slice('sqlite:'.length);
      fs.mkdirSync(new URL('.', `file://${file}`).pathname, { recursive: true });
      locks.push(
        lockSqlite(file, { pid: process.pid, host: os.hostname(), instance: instanceId, since: nowIso() }),
      );
    }
  } catch (err) {
    release();
    throw err;
  }
  const outage = new OutageLog(log);
  let store: Store;
  try {
    store = await openStore(config.db, {
      durable: config.durableCommits,
      pool: config.database,
      onConnectionError: (err) => outage.failed('database connection', err),
      onFileGone: (err) =>
        log.fatal({ err: err.message }, 'database file lost; answering 503 until restarted'),
    });
  } catch (err) {
    release();
    throw err;
  }
  // Every completed query is the evidence an outage has ended (not merely a step that did nothing).
  store.db = store.db.withPlugin(outage.plugin());
  const lease = new Lease(
    store,
    {
      id: instanceId,
      host: os.hostname(),
      port: opts.port ?? null,
      role: opts.role ?? 'server',
      data_dir: config.dataDir,
      pid: process.pid,
      started_at: nowIso(),
    },
    config.leaseTtlMs,
    log,
  );
  try {
    await lease.register();
  } catch (err) {
    await store.close();
    release();
    throw err;
  }
  const configured = createLauncher(config.supervisor, config.dataDir, (msg) => log.warn(msg));
  const ctx: Ctx = { store, bus: new EventBus(), config, instanceId, log, outage, lease, checks: configured };
  const launcher = opts.wrapLauncher ? opts.wrapLauncher(configured) : configured;
  const watcher = new Watcher(ctx, launcher);
  const gates = new GateKeeper(ctx, watcher);
  const listener =
    store.dialect === 'postgres'
      ? new EventListener(config.db, {
          onWake: (lastSeq) => ctx.bus.emit(lastSeq),
          onAttempt: (id) => watcher.wake(id),
          onGate: (key) => gates.wake(key || undefined),
          // Requests announced while the connection was down are gone: look at every attempt once.
          onConnect: () => {
            watcher.wake();
            gates.wake();
          },
          onError: (err) => outage.failed('event listener', err),
          connectTimeoutMs: config.database.connectTimeoutMs,
        })
      : null;
  return new Lifeline(
    ctx,
    watcher,
    launcher,
    locks,
    listener,
    opts.retentionHooks,
    opts.onReconcileLook,
    gates,
  );
}
