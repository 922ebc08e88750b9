// The stack page's rules (web/js/views/stack/model.js): columns by the API's depth, a counted unit's label,
// and a run's progress counting only the units the run targets.
import { describe, expect, it } from 'vitest';
import { importWeb } from './web-module.ts';

interface Unit {
  key: string;
  index: number | null;
  depth: number;
}
const { unitColumns, unitLabel, runProgress } = await importWeb<{
  unitColumns(units: Unit[]): Unit[][];
  unitLabel(u: Unit): string;
  runProgress(run: { steps: { step: string }[] } | null): { done: number; total: number };
}>('views/stack/model.js');

describe('stack page model', () => {
  it('groups units into columns by depth, in the order given', () => {
    const units = [
      { key: 'net', index: null, depth: 0 },
      { key: 'tpl', index: null, depth: 0 },
      { key: 'app', index: 1, depth: 1 },
      { key: 'app', index: 2, depth: 1 },
      { key: 'fin', index: null, depth: 2 },
    ];
    expect(unitColumns(units).map((c) => c.map(unitLabel))).toEqual([
      ['net', 'tpl'],
      ['app-1', 'app-2'],
      ['fin'],
    ]);
    expect(unitColumns([])).toEqual([]);
  });

  it('counts settled targets of all targets; units not needed are left out', () => {
    const steps = ['succeeded', 'failed', 'launched', 'waiting', 'not_needed', 'skipped', 'unknown'];
    expect(runProgress({ steps: steps.map((step) => ({ step })) })).toEqual({ done: 4, total: 6 });
    expect(runProgress(null)).toEqual({ done: 0, total: 0 });
  });
});
