// The pure rules of outputs (SPEC §12.1): merge (later keys win), the 64 KiB bound, what an end does to
// the deployment's outputs, and the fold of outputs_changed that gives the stored value.
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  foldOutputs,
  mergeOutputs,
  OUTPUTS_LIMIT,
  outputsAfterEnd,
  parseOutputs,
  sameOutputs,
} from '../../src/domain/outputs.ts';

describe('mergeOutputs', () => {
  it('merges keys, later ones winning, without touching the current object', () => {
    const cur = { a: 1, b: { x: 1 } };
    const m = mergeOutputs(cur, { b: 2, c: [1, 'two'] });
    expect(m).toEqual({ ok: true, outputs: { a: 1, b: 2, c: [1, 'two'] }, bytes: 27 });
    expect(cur).toEqual({ a: 1, b: { x: 1 } });
  });

  it('keeps "__proto__" as a plain key', () => {
    const m = mergeOutputs({}, JSON.parse('{"__proto__": {"polluted": true}}'));
    expect(m.ok && Object.keys(m.outputs)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses a non-object', () => {
    for (const v of [null, 'x', 1, [1], true, undefined])
      expect(mergeOutputs({ a: 1 }, v)).toEqual({ ok: false, reason: 'not_object' });
  });

  it('refuses a merge past the limit, counting UTF-8 bytes of the JSON', () => {
    const fill = (n: number) => ({ v: 'é'.repeat(n) }); // 2 bytes each
    const base = Buffer.byteLength(JSON.stringify({ v: '' }));
    const fits = (OUTPUTS_LIMIT - base) / 2;
    expect(mergeOutputs({}, fill(fits))).toMatchObject({ ok: true, bytes: OUTPUTS_LIMIT });
    expect(mergeOutputs({}, fill(fits + 1))).toEqual({
      ok: false,
      reason: 'too_large',
      bytes: OUTPUTS_LIMIT + 2,
    });
  });
});

describe('outputsAfterEnd', () => {
  const o = { a: 1 };
  it('a succeeded current deploy gives its outputs; a succeeded teardown clears; the rest keep', () => {
    expect(outputsAfterEnd('deploy', 'succeeded', true, o)).toBe(o);
    expect(outputsAfterEnd('teardown', 'succeeded', true, o)).toEqual({});
    for (const s of ['failed', 'cancelled', 'unknown']) {
      expect(outputsAfterEnd('deploy', s, true, o)).toBeNull();
      expect(outputsAfterEnd('teardown', s, true, o)).toBeNull();
    }
    expect(outputsAfterEnd('deploy', 'succeeded', false, o)).toBeNull();
    expect(outputsAfterEnd('teardown', 'succeeded', false, o)).toBeNull();
  });
});

describe('sameOutputs, parseOutputs', () => {
  it('compares with keys in any order, nested too', () => {
    expect(sameOutputs({ a: 1, b: { x: 1, y: 2 } }, { b: { y: 2, x: 1 }, a: 1 })).toBe(true);
    expect(sameOutputs({ a: 1 }, { a: '1' })).toBe(false);
    expect(sameOutputs({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });

  it('reads a stored column: absent, null or not an object is {}', () => {
    expect([parseOutputs(undefined), parseOutputs(null), parseOutputs(''), parseOutputs('[1]')]).toEqual([
      {},
      {},
      {},
      {},
    ]);
    expect(parseOutputs('{"a":1}')).toEqual({ a: 1 });
  });
});

describe('foldOutputs', () => {
  it('is the last outputs_changed, {} before any; other events do not count', () => {
    const ev = (type: string, data: Record<string, unknown>) => ({ type, data });
    expect(foldOutputs([])).toEqual({});
    const events = [
      ev('outputs_changed', { outputs: { a: 1 } }),
      ev('runner_event', { output: { b: 2 }, outputs: { c: 3 } }),
      ev('outputs_changed', { outputs: { a: 2 } }),
    ];
    expect(foldOutputs(events)).toEqual({ a: 2 });
    expect(foldOutputs(events.slice(0, 2))).toEqual({ a: 1 });
    expect(foldOutputs([...events, ev('outputs_changed', { outputs: {} })])).toEqual({});
  });
});

describe('webhooks', () => {
  it('deliver outputs_changed by default, like every type but log_line (SPEC §10)', async () => {
    const { DEFAULT_WEBHOOK_EVENTS } = await import('../../src/config/webhooks.ts');
    expect(DEFAULT_WEBHOOK_EVENTS).toContain('outputs_changed');
    expect(DEFAULT_WEBHOOK_EVENTS).not.toContain('log_line');
  });
});
