// /metrics for drift (SPEC §14.2): drifted deployments by plan, counted at scrape time.
import { Gauge, type Registry } from 'prom-client';
import { countDriftedByPlan } from '../store/drift.ts';
import type { Ctx } from './context.ts';

export function registerDriftMetrics(registry: Registry, ctx: Ctx): void {
  const db = ctx.store.db;
  new Gauge({
    name: 'lifeline_deployments_drifted',
    help: 'Ready deployments a check found drifted (verdict absent or failed), by plan',
    labelNames: ['plan'],
    registers: [registry],
    async collect() {
      this.reset();
      // Every configured plan with a check shows, at 0 when none drifted, so alerts can say `== 0`.
      for (const p of Object.values(ctx.config.plans)) if (p.check) this.set({ plan: p.name }, 0);
      for (const r of await countDriftedByPlan(db)) this.set({ plan: r.plan }, r.n);
    },
  });
}
