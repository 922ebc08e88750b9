import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideFreezeGate,
  holding,
  inForce,
  matches,
  nextChange,
  type Freeze,
  type FreezeSubject,
} from '../../src/domain/freeze.ts';
import type { AttemptKind } from '../../src/domain/types.ts';

const T = Date.parse('2026-12-14T08:00:00Z');
const H = 3_600_000;
const freeze = (over: Partial<Freeze> = {}): Freeze => ({
  name: 'exam-week',
  match: {},
  fromMs: T,
  untilMs: T + 10 * H,
  when: 'queue',
  source: 'config',
  ...over,
});
const vm: FreezeSubject = { plan: 'vm', labels: { course: 'sec-101' }, kind: 'deploy' };
const gate = (fs: Freeze[], over: Partial<{ adminForce: boolean; retry: boolean }> = {}, at = T + H) =>
  decideFreezeGate(fs, { subject: vm, adminForce: false, retry: false, ...over }, at);

describe('freezes: in force', () => {
  it('from (inclusive) to until (exclusive); no from = from the start; a lifted freeze never', () => {
    const f = freeze();
    expect([inForce(f, T - 1), inForce(f, T), inForce(f, T + 10 * H - 1), inForce(f, T + 10 * H)]).toEqual([
      false,
      true,
      true,
      false,
    ]);
    expect(inForce(freeze({ fromMs: null }), 0)).toBe(true);
    expect(inForce(freeze({ liftedMs: T + H }), T + 2 * H)).toBe(false);
  });
});

describe('freezes: match', () => {
  it('empty = everything; plans, labels (all must be equal) and kinds narrow it', () => {
    expect(matches(freeze(), vm)).toBe(true);
    expect(matches(freeze({ match: { plans: ['vm', 'sdn'] } }), vm)).toBe(true);
    expect(matches(freeze({ match: { plans: ['sdn'] } }), vm)).toBe(false);
    expect(matches(freeze({ match: { labels: { course: 'sec-101' } } }), vm)).toBe(true);
    expect(matches(freeze({ match: { labels: { course: 'sec-102' } } }), vm)).toBe(false);
    expect(matches(freeze({ match: { labels: { course: 'sec-101', env: 'x' } } }), vm)).toBe(false);
    expect(matches(freeze({ match: { kinds: ['teardown'] } }), vm)).toBe(false);
    expect(matches(freeze({ match: { kinds: ['teardown'] } }), { ...vm, kind: 'teardown' })).toBe(true);
  });

  it('a label named like an Object property is not matched by the prototype', () => {
    expect(matches(freeze({ match: { labels: { toString: 'x' } } }), { ...vm, labels: {} })).toBe(false);
  });
});

describe('freezes: the gate', () => {
  it('queue: waits with {freeze, until}; reject: 409 FROZEN; nothing in force: open', () => {
    expect(gate([freeze()])).toEqual({
      open: false,
      wait: true,
      detail: { freeze: 'exam-week', until: '2026-12-14T18:00:00.000Z' },
    });
    const r = gate([freeze({ when: 'reject' })]);
    expect(r).toMatchObject({ open: false, wait: false, code: 'FROZEN', detail: { freeze: 'exam-week' } });
    expect(gate([freeze()], {}, T - 1)).toEqual({ open: true });
    expect(gate([freeze({ match: { plans: ['sdn'] } })])).toEqual({ open: true });
  });

  it('admin force passes any freeze', () => {
    expect(gate([freeze({ when: 'reject' }), freeze({ name: 'b' })], { adminForce: true })).toEqual({
      open: true,
    });
  });

  it('a retry is never refused: it waits for the end of a reject freeze too', () => {
    expect(gate([freeze({ when: 'reject' })], { retry: true })).toMatchObject({ open: false, wait: true });
  });

  it('reject wins over queue; a waiting attempt names the freeze that ends last', () => {
    const a = freeze({ name: 'a', untilMs: T + 2 * H });
    const b = freeze({ name: 'b', untilMs: T + 5 * H });
    expect(gate([a, b])).toMatchObject({ wait: true, detail: { freeze: 'b' } });
    expect(gate([b, a])).toMatchObject({ wait: true, detail: { freeze: 'b' } });
    expect(gate([b, { ...a, when: 'reject' }])).toMatchObject({ wait: false, detail: { freeze: 'a' } });
  });

  it('property: open exactly when no matching freeze is in force (or admin force)', () => {
    const arbFreeze = fc.record({
      name: fc.constantFrom('a', 'b', 'c'),
      match: fc.record(
        {
          plans: fc.array(fc.constantFrom('vm', 'sdn'), { minLength: 1 }),
          kinds: fc.constant<AttemptKind[]>(['teardown']),
        },
        { requiredKeys: [] },
      ),
      fromMs: fc.option(fc.integer({ min: 0, max: 100 }), { nil: null }),
      untilMs: fc.integer({ min: 1, max: 200 }),
      when: fc.constantFrom('queue' as const, 'reject' as const),
      source: fc.constant('api' as const),
      liftedMs: fc.option(fc.integer({ min: 0, max: 200 }), { nil: null }),
    });
    fc.assert(
      fc.property(
        fc.array(arbFreeze, { maxLength: 5 }),
        fc.integer({ min: 0, max: 250 }),
        fc.boolean(),
        (fs, now, retry) => {
          const g = decideFreezeGate(fs, { subject: vm, adminForce: false, retry }, now);
          const held = holding(fs, vm, now);
          expect(g.open).toBe(held.length === 0);
          if (!g.open) {
            // The named freeze holds the attempt, and none holding it ends later.
            const named = held.find((f) => f.name === g.detail.freeze)!;
            expect(named).toBeDefined();
            if (g.wait) expect(Math.max(...held.map((f) => f.untilMs))).toBe(Date.parse(g.detail.until));
            expect(g.wait).toBe(retry || held.every((f) => f.when === 'queue'));
          }
          expect(decideFreezeGate(fs, { subject: vm, adminForce: true, retry }, now)).toEqual({ open: true });
          // Nothing changes strictly between now and the next change.
          const next = nextChange(fs, now);
          if (next !== null) {
            expect(next).toBeGreaterThan(now);
            expect(holding(fs, vm, next - 1)).toEqual(held);
          }
        },
      ),
    );
  });
});
