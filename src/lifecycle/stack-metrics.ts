// /metrics for stacks and runs (SPEC §12): stacks by state and active runs by kind, counted at scrape
// time. Every state and kind shows, at 0 when there is none, so alerts can say `== 0`.
import { Gauge, type Registry } from 'prom-client';
import { STACK_STATES } from '../domain/stack-state.ts';
import { countActiveRunsByKind, countStacksByState } from '../store/stats.ts';
import type { Ctx } from './context.ts';

const RUN_KINDS = ['deploy', 'teardown'] as const;

export function registerStackMetrics(registry: Registry, ctx: Ctx): void {
  const db = ctx.store.db;
  new Gauge({
    name: 'lifeline_stacks',
    help: 'Stacks (not deleted) by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const counts = await countStacksByState(db);
      for (const s of STACK_STATES) this.set({ state: s }, counts.get(s) ?? 0);
    },
  });
  new Gauge({
    name: 'lifeline_runs_active',
    help: 'Stack runs queued or running, by kind: deploy, teardown',
    labelNames: ['kind'],
    registers: [registry],
    async collect() {
      const counts = await countActiveRunsByKind(db);
      for (const kind of RUN_KINDS) this.set({ kind }, counts.get(kind) ?? 0);
    },
  });
}
