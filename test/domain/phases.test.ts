// foldPhases (SPEC §9.4): runner events with a string `phase` into phases with times and durations.
import { describe, expect, it } from 'vitest';
import { foldPhases, type PhaseEvent } from '../../src/domain/phases.ts';

const ev = (sec: number, data: Record<string, unknown>): PhaseEvent => ({
  at: new Date(Date.UTC(2026, 10, 30, 12, 0, sec)).toISOString(),
  data,
});
const t = (sec: number) => new Date(Date.UTC(2026, 10, 30, 12, 0, sec)).toISOString();

describe('foldPhases', () => {
  it('each phase ends where the next starts; the last ends with the attempt', () => {
    const phases = foldPhases([ev(1, { phase: 'plan' }), ev(4, { phase: 'apply', tasks: 3 })], t(10));
    expect(phases).toEqual([
      { phase: 'plan', started_at: t(1), ended_at: t(4), duration_ms: 3000 },
      { phase: 'apply', started_at: t(4), ended_at: t(10), duration_ms: 6000 },
    ]);
  });

  it('the last phase is open (no end, no duration) while the attempt runs', () => {
    expect(foldPhases([ev(1, { phase: 'plan' })], null)).toEqual([
      { phase: 'plan', started_at: t(1), ended_at: null, duration_ms: null },
    ]);
  });

  it('ignores events without a string phase, and a phase_end that names another phase', () => {
    const phases = foldPhases(
      [
        ev(0, { step: 1 }),
        ev(1, { phase: 'a' }),
        ev(2, { phase: 42 }),
        ev(3, { phase_end: 'b' }),
        ev(5, { phase_end: 'a' }),
        ev(6, { note: 'between tasks' }),
        ev(7, { phase: 'b' }),
        ev(8, { phase_end: 'b' }),
      ],
      t(20),
    );
    expect(phases).toEqual([
      { phase: 'a', started_at: t(1), ended_at: t(5), duration_ms: 4000 },
      { phase: 'b', started_at: t(7), ended_at: t(8), duration_ms: 1000 },
    ]);
    expect(foldPhases([], t(1))).toEqual([]);
    expect(foldPhases([ev(1, { note: 'x' })], t(2))).toEqual([]);
  });

  it("prefers the plan's own `at` stamp when it is a valid time", () => {
    const phases = foldPhases(
      [
        ev(5, { phase: 'a', at: '2026-11-30T12:00:01.250Z' }),
        ev(6, { phase_end: 'a', at: '2026-11-30T12:00:02.000Z' }),
        ev(7, { phase: 'b', at: 'not a time' }),
      ],
      t(9),
    );
    expect(phases[0]).toMatchObject({ started_at: '2026-11-30T12:00:01.250Z', duration_ms: 750 });
    expect(phases[1]).toMatchObject({ started_at: t(7), duration_ms: 2000 });
  });

  it('never ends a phase before it started (late events, clock steps) and cuts long names', () => {
    const phases = foldPhases([ev(5, { phase: 'x'.repeat(500) }), ev(3, { phase: 'y' })], t(4));
    expect(phases[0]).toMatchObject({ ended_at: phases[0].started_at, duration_ms: 0 });
    expect(phases[0].phase).toHaveLength(200);
    expect(phases[1].duration_ms).toBe(1000);
  });
});
