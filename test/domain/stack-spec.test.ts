// The stack spec of SPEC §12.2: what is refused (naming the field), how units expand, and the graph.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expandSpec,
  findCycle,
  orderedKeys,
  parseStackSpec,
  unitDepths,
  unitPredecessors,
  unitSuccessors,
  type StackSpec,
} from '../../src/domain/stack-spec.ts';
import { DEPLOYMENT_NAME } from '../../src/domain/types.ts';

const range = {
  name: 'range-7',
  labels: { course: 'sec-101' },
  units: [
    { key: 'net', plan: 'sdn', params: { vlan: 107 } },
    { key: 'template', plan: 'vm-template' },
    { key: 'student', plan: 'vm', count: 3, params: { role: 'student' }, after: ['net', 'template'] },
    { key: 'finalize', plan: 'ansible-finalize', after: ['student'] },
  ],
};

function errorsOf(input: unknown): { field: string; reason: string }[] {
  const r = parseStackSpec(input);
  if (r.ok) throw new Error('expected the spec to be refused');
  return r.errors;
}

function spec(input: unknown): StackSpec {
  const r = parseStackSpec(input);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

describe('parseStackSpec', () => {
  it('accepts the SPEC example with defaults filled in', () => {
    const s = spec(range);
    expect(s.on_failure).toBe('stop');
    expect(s.units[0]).toEqual({ key: 'net', plan: 'sdn', params: { vlan: 107 }, count: 1, after: [] });
  });

  it('names the field of each malformed part', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ ...range, name: 'x'.repeat(41) }, 'name', /40/],
      [{ ...range, name: 'Bad' }, 'name', /must match/],
      [{ ...range, on_failure: 'halt' }, 'on_failure', /stop, continue/],
      [{ ...range, labels: { 'lifeline.stack': 'x' } }, 'labels.lifeline.stack', /set by Lifeline/],
      [{ ...range, labels: { a: 1 } }, 'labels.a', /strings/],
      [{ ...range, units: [] }, 'units', /non-empty/],
      [{ ...range, extra: 1 }, 'extra', /not a stack spec field/],
      [{ name: 's', units: [{ key: 'A', plan: 'p' }] }, 'units[0].key', /must match/],
      [{ name: 's', units: [{ key: 'a'.repeat(21), plan: 'p' }] }, 'units[0].key', /must match/],
      [{ name: 's', units: [{ key: 'a' }] }, 'units[0].plan', /plan/],
      [{ name: 's', units: [{ key: 'a', plan: 'p', params: [] }] }, 'units[0].params', /object/],
      [{ name: 's', units: [{ key: 'a', plan: 'p', count: 0 }] }, 'units[0].count', /1 to 100/],
      [{ name: 's', units: [{ key: 'a', plan: 'p', count: 101 }] }, 'units[0].count', /1 to 100/],
      [{ name: 's', units: [{ key: 'a', plan: 'p', count: 1.5 }] }, 'units[0].count', /1 to 100/],
      [{ name: 's', units: [{ key: 'a', plan: 'p', after: 'b' }] }, 'units[0].after', /list/],
      [{ name: 's', units: [{ key: 'a', plan: 'p', after: ['a'] }] }, 'units[0].after[0]', /itself/],
      [
        {
          name: 's',
          units: [
            { key: 'a', plan: 'p' },
            { key: 'b', plan: 'p', after: ['a', 'zz'] },
          ],
        },
        'units[1].after[1]',
        /no unit has the key zz/,
      ],
      [
        {
          name: 's',
          units: [
            { key: 'a', plan: 'p' },
            { key: 'a', plan: 'q' },
          ],
        },
        'units[1].key',
        /also the key/,
      ],
      [
        {
          name: 's',
          units: [
            { key: 'a', plan: 'p', count: 2 },
            { key: 'a-1', plan: 'p' },
          ],
        },
        'units[1].key',
        /s-a-1 is also one of units\[0\]/,
      ],
      [
        { name: 'x'.repeat(40), units: [{ key: 'k'.repeat(20), plan: 'p', count: 10 }] },
        'units[0].key',
        /longer than 63/,
      ],
      [{ name: 's', units: [{ key: 'a', plan: 'p', colour: 'red' }] }, 'units[0].colour', /not a unit field/],
    ];
    for (const [input, field, reason] of cases) {
      const errors = errorsOf(input);
      const hit = errors.find((e) => e.field === field);
      expect(hit, `${field} in ${JSON.stringify(errors)}`).toBeDefined();
      expect(hit!.reason).toMatch(reason);
    }
  });

  it('names a cycle by its keys', () => {
    const errors = errorsOf({
      name: 's',
      units: [
        { key: 'a', plan: 'p', after: ['c'] },
        { key: 'b', plan: 'p', after: ['a'] },
        { key: 'c', plan: 'p', after: ['b'] },
      ],
    });
    expect(errors).toEqual([{ field: 'units[0].after', reason: 'dependency cycle: a -> c -> b -> a' }]);
  });

  it('a 40-character stack name with a 20-character key fits while the name stays within 63', () => {
    const name = 'x'.repeat(40);
    expect(parseStackSpec({ name, units: [{ key: 'k'.repeat(20), plan: 'p' }] }).ok).toBe(true);
    expect(parseStackSpec({ name, units: [{ key: 'k'.repeat(20), plan: 'p', count: 9 }] }).ok).toBe(true);
    expect(parseStackSpec({ name, units: [{ key: 'k'.repeat(20), plan: 'p', count: 10 }] }).ok).toBe(false);
  });
});

describe('expandSpec and the graph', () => {
  it('names and labels units as SPEC §12.2 says', () => {
    const units = expandSpec(spec(range));
    expect(units.map((u) => u.name)).toEqual([
      'range-7-net',
      'range-7-template',
      'range-7-student-1',
      'range-7-student-2',
      'range-7-student-3',
      'range-7-finalize',
    ]);
    expect(units[0].labels).toEqual({
      course: 'sec-101',
      'lifeline.stack': 'range-7',
      'lifeline.unit': 'net',
    });
    expect(units[3]).toMatchObject({
      key: 'student',
      index: 2,
      labels: { 'lifeline.unit': 'student', 'lifeline.index': '2' },
    });
    expect(units[0].index).toBeNull();
  });

  it('depths, order, predecessors and successors', () => {
    const s = spec(range);
    expect(Object.fromEntries(unitDepths(s))).toEqual({ net: 0, template: 0, student: 1, finalize: 2 });
    expect(orderedKeys(s)).toEqual(['net', 'template', 'student', 'finalize']);
    const pred = unitPredecessors(s);
    expect(pred.get('range-7-student-2')).toEqual(['range-7-net', 'range-7-template']);
    expect(pred.get('range-7-finalize')).toEqual([
      'range-7-student-1',
      'range-7-student-2',
      'range-7-student-3',
    ]);
    expect(unitSuccessors(s).get('range-7-net')).toEqual([
      'range-7-student-1',
      'range-7-student-2',
      'range-7-student-3',
    ]);
  });
});

/** Random DAG-or-not specs: key i may come after any key (cycles possible). */
const graphs = fc
  .integer({ min: 1, max: 8 })
  .chain((n) =>
    fc.tuple(
      fc.constant(n),
      fc.array(fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 3 }), {
        minLength: n,
        maxLength: n,
      }),
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: n, maxLength: n }),
    ),
  )
  .map(([n, edges, counts]) => ({
    name: 'st',
    units: Array.from({ length: n }, (_, i) => ({
      key: `u${i}`,
      plan: 'p',
      count: counts[i],
      after: [...new Set(edges[i].filter((j) => j !== i).map((j) => `u${j}`))],
    })),
  }));

describe('properties', () => {
  it('a spec is accepted exactly when its graph has no cycle; an accepted one orders every edge', () => {
    fc.assert(
      fc.property(graphs, (input) => {
        const r = parseStackSpec(input);
        const cycle = findCycle(input);
        expect(r.ok).toBe(cycle === null);
        if (!r.ok) {
          // The cycle named is a real one: each key comes after the next.
          const keys = cycle!;
          expect(keys[0]).toBe(keys[keys.length - 1]);
          for (let i = 0; i + 1 < keys.length; i++) {
            const u = input.units.find((x) => x.key === keys[i])!;
            expect(u.after).toContain(keys[i + 1]);
          }
          return;
        }
        const depth = unitDepths(r.spec);
        for (const u of r.spec.units)
          for (const a of u.after) expect(depth.get(u.key)!).toBeGreaterThan(depth.get(a)!);
        const units = expandSpec(r.spec);
        expect(units.length).toBe(r.spec.units.reduce((n, u) => n + u.count, 0));
        expect(new Set(units.map((u) => u.name)).size).toBe(units.length);
        for (const u of units) expect(u.name).toMatch(DEPLOYMENT_NAME);
        // Successors are the inverse of predecessors.
        const pred = unitPredecessors(r.spec);
        for (const [name, after] of unitSuccessors(r.spec))
          for (const s of after) expect(pred.get(s)).toContain(name);
      }),
      { numRuns: 300 },
    );
  });
});
