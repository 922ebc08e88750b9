// A stack's state is the pure function of SPEC §12.3; the decisions on stack writes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideStackDelete,
  decideStackState,
  decideStackUnknown,
  decideStackUpdate,
  decideUnitWrite,
  foldStack,
  stackStateOf,
  type RunKind,
  type StackState,
} from '../../src/domain/stack-state.ts';
import { DEPLOYMENT_STATES, type DeploymentState } from '../../src/domain/types.ts';

const ADMIN = { isAdmin: true };
const OPERATOR = { isAdmin: false };

/** The rule as SPEC §12.3 words it, one clause after the other. */
function byTheWords(run: RunKind | null, units: DeploymentState[]): StackState {
  if (run) return run === 'deploy' ? 'deploying' : 'tearing_down';
  if (units.some((s) => s === 'unknown')) return 'unknown';
  if (units.every((s) => s === 'ready')) return 'ready';
  if (units.every((s) => s === 'pending')) return 'pending';
  if (units.every((s) => s === 'torn_down' || s === 'pending') && units.some((s) => s === 'torn_down'))
    return 'torn_down';
  if (units.some((s) => s === 'ready')) return 'partial';
  return 'failed';
}

const unitStates = fc.array(fc.constantFrom(...DEPLOYMENT_STATES), { minLength: 1, maxLength: 12 });
const runs = fc.constantFrom<RunKind | null>(null, 'deploy', 'teardown');

describe('stackStateOf', () => {
  it('follows SPEC §12.3 clause by clause', () => {
    fc.assert(
      fc.property(runs, unitStates, (run, units) => {
        expect(stackStateOf(run, units)).toBe(byTheWords(run, units));
      }),
      { numRuns: 2000 },
    );
  });

  it('examples', () => {
    expect(stackStateOf(null, ['ready', 'ready'])).toBe('ready');
    expect(stackStateOf(null, ['ready', 'failed'])).toBe('partial');
    expect(stackStateOf(null, ['ready', 'unknown'])).toBe('unknown');
    expect(stackStateOf(null, ['pending', 'torn_down'])).toBe('torn_down');
    expect(stackStateOf(null, ['pending', 'pending'])).toBe('pending');
    expect(stackStateOf(null, ['failed', 'pending'])).toBe('failed');
    expect(stackStateOf('teardown', ['unknown'])).toBe('tearing_down');
  });

  it('the state is independent of unit order', () => {
    fc.assert(
      fc.property(runs, unitStates, (run, units) => {
        expect(stackStateOf(run, [...units].reverse())).toBe(stackStateOf(run, units));
      }),
    );
  });
});

describe('decideStackState and foldStack', () => {
  it('folding the changes decided over any sequence of unit changes gives the last state', () => {
    fc.assert(
      fc.property(
        unitStates,
        fc.array(fc.tuple(fc.nat(), fc.constantFrom(...DEPLOYMENT_STATES), runs), { maxLength: 30 }),
        (initial, steps) => {
          const units = initial.map(() => 'pending' as DeploymentState);
          const events: { type: string; data: { entity: string; to: StackState } }[] = [];
          let stored: StackState | null = null;
          const apply = (run: RunKind | null) => {
            const change = decideStackState(stored, run, units, 'unit_changed');
            if (change) {
              expect(change.from).toBe(stored);
              expect(change.to).not.toBe(stored);
              events.push({ type: 'state_transition', data: { entity: 'stack', to: change.to } });
              // Other entities' transitions and other events never count.
              events.push({ type: 'runner_event', data: { entity: 'stack', to: 'failed' } });
              events.push({
                type: 'state_transition',
                data: { entity: 'deployment', to: 'failed' } as never,
              });
              stored = change.to;
            }
            expect(foldStack(events).state).toBe(stored);
            expect(stored).toBe(stackStateOf(run, units));
          };
          apply(null);
          for (const [i, s, run] of steps) {
            units[i % units.length] = s;
            apply(run);
          }
        },
      ),
    );
  });
});

describe('stack write decisions', () => {
  it('update: a run blocks; removed units must be pending or torn_down, all listed', () => {
    expect(decideStackUpdate('run_1', [])).toMatchObject({
      ok: false,
      refusal: { code: 'STACK_RUN_IN_PROGRESS' },
    });
    expect(
      decideStackUpdate(null, [
        { name: 'a', state: 'pending' },
        { name: 'b', state: 'torn_down' },
      ]),
    ).toEqual({
      ok: true,
    });
    const r = decideStackUpdate(null, [
      { name: 's-a', state: 'ready' },
      { name: 's-b', state: 'pending' },
      { name: 's-c', state: 'failed' },
    ]);
    expect(r).toMatchObject({ ok: false, refusal: { code: 'UNIT_NOT_TORN_DOWN' } });
    if (!r.ok) {
      expect(r.refusal.detail).toContain('s-a (ready)');
      expect(r.refusal.detail).toContain('s-c (failed)');
      expect(r.refusal.detail).not.toContain('s-b');
    }
  });

  it('delete: every unit pending/torn_down unless force (admin); never over an active attempt or run', () => {
    const standing = [
      { name: 's-a', state: 'ready' as const },
      { name: 's-b', state: 'torn_down' as const },
    ];
    expect(decideStackDelete(null, standing, false, ADMIN)).toMatchObject({
      ok: false,
      refusal: { code: 'UNIT_NOT_TORN_DOWN' },
    });
    expect(decideStackDelete(null, standing, true, ADMIN)).toEqual({ ok: true });
    expect(decideStackDelete(null, standing, true, OPERATOR)).toMatchObject({
      refusal: { code: 'FORBIDDEN' },
    });
    expect(decideStackDelete(null, [{ name: 's-a', state: 'deploying' }], true, ADMIN)).toMatchObject({
      refusal: { code: 'INVALID_TRANSITION' },
    });
    expect(decideStackDelete('run_1', [], true, ADMIN)).toMatchObject({
      refusal: { code: 'STACK_RUN_IN_PROGRESS' },
    });
    fc.assert(
      fc.property(unitStates, fc.boolean(), (states, force) => {
        const units = states.map((state, i) => ({ name: `u${i}`, state }));
        const ok = decideStackDelete(null, units, force, ADMIN).ok;
        const removable = states.every((s) => s === 'pending' || s === 'torn_down');
        const busy = states.some((s) => s === 'deploying' || s === 'tearing_down');
        expect(ok).toBe(!busy && (removable || force));
      }),
    );
  });

  it('unit writes during a run, and the unknown guard', () => {
    expect(decideUnitWrite('s', null)).toEqual({ ok: true });
    expect(decideUnitWrite('s', 'run_9')).toMatchObject({ refusal: { code: 'STACK_RUN_IN_PROGRESS' } });
    expect(decideStackUnknown('unknown', false, ADMIN)).toMatchObject({
      refusal: { code: 'STACK_UNKNOWN_STATE' },
    });
    expect(decideStackUnknown('unknown', true, ADMIN)).toEqual({ ok: true });
    expect(decideStackUnknown('unknown', true, OPERATOR)).toMatchObject({ refusal: { code: 'FORBIDDEN' } });
    expect(decideStackUnknown('partial', false, OPERATOR)).toEqual({ ok: true });
  });
});
