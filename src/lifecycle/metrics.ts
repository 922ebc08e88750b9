// Prometheus metrics of one instance (SPEC §11): counts computed at scrape time from grouped queries,
// attempt durations observed as `attempt_end` events commit, and the process defaults. Labels are
// bounded sets only (state, plan, kind, reason, webhook name): never a deployment name or id.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DEPLOYMENT_STATES, GATE_NAMES, type AttemptKind } from '../domain/types.ts';
import { countWaitingByGate } from '../store/gates.ts';
import { countAttempts, countDeploymentsByState, lastSeq, selectEndedAttempts } from '../store/stats.ts';
import type { Ctx } from './context.ts';
import { registerDriftMetrics } from './drift-metrics.ts';
import { registerStackMetrics } from './stack-metrics.ts';

const KINDS: AttemptKind[] = ['deploy', 'teardown'];
const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];
/** Delay between a commit and the read of attempt ends it may have brought (commits meanwhile join it). */
const PUMP_DELAY_MS = 1_000;
const PASS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  readonly registry = new Registry();
  private readonly durations: Histogram<'plan' | 'kind'>;
  private readonly passes: Histogram;
  private readonly subscribers: Gauge;
  /** Highest seq whose `attempt_end` has been looked at; null until the starting point is read. */
  private seen: number | null = null;
  private pumping: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly unsubscribe: () => void;

  constructor(private readonly ctx: Ctx) {
    const { registry: registers } = this;
    const db = ctx.store.db;
    collectDefaultMetrics({ register: registers });

    new Gauge({
      name: 'lifeline_deployments',
      help: 'Deployments (not deleted) by state',
      labelNames: ['state'],
      registers: [registers],
      async collect() {
        const counts = await countDeploymentsByState(db);
        for (const s of DEPLOYMENT_STATES) this.set({ state: s }, counts.get(s) ?? 0);
      },
    });
    new Gauge({
      name: 'lifeline_deployments_unknown',
      help: 'Deployments whose real state is unknown and need a human (resolve)',
      registers: [registers],
      async collect() {
        this.set((await countDeploymentsByState(db)).get('unknown') ?? 0);
      },
    });
    registerDriftMetrics(registers, ctx);
    registerStackMetrics(registers, ctx);
    new Gauge({
      name: 'lifeline_attempts',
      help: 'Attempts in the database by plan, kind, state and reason (reason "" while not ended)',
      labelNames: ['plan', 'kind', 'state', 'reason'],
      registers: [registers],
      async collect() {
        this.reset();
        for (const r of await countAttempts(db)) {
          this.set({ plan: r.plan, kind: r.kind, state: r.state, reason: r.reason ?? '' }, r.n);
        }
      },
    });
    new Gauge({
      name: 'lifeline_attempts_waiting',
      help: 'Attempts a gate holds now (queued, not launched), by gate: concurrency, freeze, approval',
      labelNames: ['gate'],
      registers: [registers],
      async collect() {
        const counts = await countWaitingByGate(db);
        for (const gate of GATE_NAMES) this.set({ gate }, counts[gate] ?? 0);
      },
    });
    new Gauge({
      name: 'lifeline_events_last_seq',
      help: 'The last seq written to the event log',
      registers: [registers],
      async collect() {
        this.set(await lastSeq(db));
      },
    });
    const bus = ctx.bus;
    new Counter({
      name: 'lifeline_store_errors_total',
      help: 'Database writes that failed for a reason other than a refusal or a lost race',
      registers: [registers],
      collect() {
        this.reset();
        this.inc(bus.storeErrors);
      },
    });
    this.subscribers = new Gauge({
      name: 'lifeline_stream_subscribers',
      help: 'Open event streams (SSE) on this instance',
      registers: [registers],
    });
    this.durations = new Histogram({
      name: 'lifeline_attempt_duration_seconds',
      help: 'Run time of attempts that ended (started to ended), by plan and kind; attempts this instance owned',
      labelNames: ['plan', 'kind'],
      buckets: DURATION_BUCKETS,
      registers: [registers],
    });
    // Zero series for every configured plan and kind, so rate() has a baseline before the first end.
    for (const plan of Object.keys(ctx.config.plans))
      for (const kind of KINDS) this.durations.zero({ plan, kind });
    this.passes = new Histogram({
      name: 'lifeline_reconcile_pass_seconds',
      help: "Time of one reconcile pass (the runner's recovery sweep over queued, running and unknown attempts)",
      buckets: PASS_BUCKETS,
      registers: [registers],
    });
    // Attempt ends are read in batches, at most once a second after commits (and at every scrape), not
    // after each commit: on a busy instance that was two reads of the events table per write.
    this.unsubscribe = bus.on(() => this.schedule());
    void this.pump(); // the starting point: ends from now on
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.pump();
    }, PUMP_DELAY_MS);
    this.timer.unref();
  }

  /** One open event stream more; call the returned function when it closes. */
  streamOpened(): () => void {
    this.subscribers.inc();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.subscribers.dec();
    };
  }

  observePass(seconds: number): void {
    this.passes.observe(seconds);
  }

  /** The exposition text, after catching up on attempt ends. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    await this.pump();
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  close(): void {
    this.unsubscribe();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Reads attempt ends after the last one seen; concurrent calls share one reader. */
  pump(): Promise<void> {
    if (this.pumping) {
      this.again = true;
      return this.pumping;
    }
    this.pumping = (async () => {
      try {
        do {
          this.again = false;
          await this.readEnds();
        } while (this.again);
      } catch (err) {
        this.ctx.log.warn({ err: (err as Error).message }, 'metrics: reading attempt ends failed');
      } finally {
        this.pumping = null;
      }
    })();
    return this.pumping;
  }

  private async readEnds(): Promise<void> {
    const db = this.ctx.store.db;
    // Only ends from now on: durations are observed, not rebuilt from history at start.
    if (this.seen === null) {
      this.seen = await lastSeq(db);
      return;
    }
    for (;;) {
      const rows = await selectEndedAttempts(db, this.seen, 500);
      for (const r of rows) {
        this.seen = r.seq;
        // Every instance reads the shared log; each counts only the attempts it owned, so sums add up.
        if (r.owner !== this.ctx.instanceId || !r.started_at || !r.ended_at) continue;
        const s = (Date.parse(r.ended_at) - Date.parse(r.started_at)) / 1000;
        if (Number.isFinite(s) && s >= 0) this.durations.observe({ plan: r.plan, kind: r.kind }, s);
      }
      if (rows.length < 500) return;
    }
  }
}
