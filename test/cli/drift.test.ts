// How the CLI shows drift (SPEC §14.2): the mark `ls` puts beside a drifted deployment's state, and
// `show`'s drift line with a waiting self-heal.
import { describe, expect, it } from 'vitest';
import { colors, driftMark, driftText, stripAnsi } from '../../src/cli/client/format.ts';

const now = Date.parse('2026-03-01T12:10:00.000Z');

describe('drift in the CLI', () => {
  it('ls marks a drifted deployment with its verdict, in colour on a terminal, and nothing otherwise', () => {
    expect(driftMark({ verdict: 'absent' }, colors(false))).toBe('drift:absent');
    const coloured = driftMark({ verdict: 'failed' }, colors(true));
    expect(coloured).not.toBe('drift:failed');
    expect(stripAnsi(coloured)).toBe('drift:failed');
    expect(driftMark(null, colors(false))).toBe('');
  });

  it('show says the verdict, since when, and when a self-heal starts', () => {
    const since = '2026-03-01T12:07:00.000Z';
    const plain = driftText({ since, verdict: 'absent', heal_at: null }, now);
    expect(plain).toMatch(/^absent since \d\d:\d\d:\d\d \(3m ago\)$/);
    const healing = driftText({ since, verdict: 'failed', heal_at: '2026-03-01T12:10:30.000Z' }, now);
    expect(healing).toMatch(
      /^failed since \d\d:\d\d:\d\d \(3m ago\), self-heal at \d\d:\d\d:\d\d \(in 30s\)$/,
    );
    const due = driftText({ since, verdict: 'failed', heal_at: '2026-03-01T12:09:00.000Z' }, now);
    expect(due).toMatch(/\(due now\)$/);
  });
});
