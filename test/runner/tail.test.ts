import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readLines, readRunnerEvents } from '../../src/runner/tail.ts';
import { removeTempDirs, tempDir } from './helpers.ts';

afterEach(removeTempDirs);

const file = () => join(tempDir(), 'out');

/** Reads until nothing more is consumed, like a caller draining a finished file. */
async function drain(f: string, offset: number, maxBytes: number, final = false) {
  const lines: string[] = [];
  let skipping = false;
  for (;;) {
    const r = await readLines(f, offset, { maxBytes, final, skipping });
    lines.push(...r.lines);
    skipping = r.skipping;
    if (r.offset === offset && !r.more) return { lines, offset };
    offset = r.offset;
  }
}

describe('readLines', () => {
  it('missing file: no lines, same offset', async () => {
    expect(await readLines(join(tempDir(), 'nope'), 7)).toEqual({
      lines: [],
      ends: [],
      starts: [],
      sizes: [],
      offset: 7,
      more: false,
      skipping: false,
    });
  });

  it('returns complete lines only and keeps the partial one for later', async () => {
    const f = file();
    writeFileSync(f, 'one\ntwo\nthr');
    const a = await readLines(f, 0);
    expect(a).toEqual({
      lines: ['one', 'two'],
      ends: [4, 8],
      starts: [0, 4],
      sizes: [3, 3],
      offset: 8,
      more: false,
      skipping: false,
    });
    expect(await readLines(f, a.offset)).toMatchObject({ lines: [], offset: 8, more: false });
    appendFileSync(f, 'ee\n\nfour');
    const b = await readLines(f, a.offset);
    expect(b.lines).toEqual(['three', '']);
    const c = await readLines(f, b.offset, { final: true });
    expect(c.lines).toEqual(['four']);
    expect(c.offset).toBe(Buffer.byteLength('one\ntwo\nthree\n\nfour'));
    expect(await readLines(f, c.offset, { final: true })).toMatchObject({ lines: [], offset: c.offset });
  });

  it('strips CR of CRLF, including on a final partial line', async () => {
    const f = file();
    writeFileSync(f, 'a\r\nb\r\r\nc\r');
    expect((await readLines(f, 0)).lines).toEqual(['a', 'b\r']);
    expect((await readLines(f, 0, { final: true })).lines).toEqual(['a', 'b\r', 'c']);
  });

  it('never cuts a multi-byte character written in pieces', async () => {
    const f = file();
    const line = 'héllo 世界 🎉';
    const bytes = Buffer.from(`${line}\n`);
    writeFileSync(f, '');
    let offset = 0;
    const got: string[] = [];
    for (let i = 0; i < bytes.length; i++) {
      appendFileSync(f, bytes.subarray(i, i + 1));
      const r = await readLines(f, offset);
      got.push(...r.lines);
      offset = r.offset;
    }
    expect(got).toEqual([line]);
    expect(offset).toBe(bytes.length);
  });

  it('an over-long line is one line, shortened, and the rest of it is skipped without buffering it', async () => {
    const f = file();
    const long = '🎉é'.repeat(60_000); // 360,000 bytes, far beyond one bounded read
    writeFileSync(f, `a\n${long}`);
    const first = await readLines(f, 0);
    expect(first.lines[0]).toBe('a');
    expect(first.lines).toHaveLength(2);
    expect(long.startsWith(first.lines[1])).toBe(true);
    expect([...first.lines[1]].length).toBeGreaterThan(4096);
    expect(first.lines[1].includes('\uFFFD')).toBe(false);
    expect(first.skipping).toBe(true);
    expect(first.offset).toBeLessThanOrEqual(128 * 1024);
    // The writer goes on with the same line, then ends it and writes another.
    appendFileSync(f, `${long}\nnext\n`);
    const { lines } = await (async () => {
      const got: string[] = [];
      let r = first;
      while (r.more || r.skipping) {
        r = await readLines(f, r.offset, { skipping: r.skipping });
        got.push(...r.lines);
        if (!r.more && r.skipping) break;
      }
      return { lines: got };
    })();
    expect(lines).toEqual(['next']);
  });

  it('a long line without a newline at the end of a finished file ends the skipping', async () => {
    const f = file();
    writeFileSync(f, 'x'.repeat(300_000));
    const { lines, offset } = await drain(f, 0, 64 * 1024, true);
    expect(lines).toHaveLength(1);
    expect(offset).toBe(300_000);
  });

  it('returns at most maxLines and says there is more', async () => {
    const f = file();
    writeFileSync(f, 'l\n'.repeat(10));
    const r = await readLines(f, 0, { maxLines: 3 });
    expect(r).toMatchObject({ lines: ['l', 'l', 'l'], ends: [2, 4, 6], offset: 6, more: true });
    expect((await drain(f, 0, 64 * 1024)).lines).toHaveLength(10);
  });

  it('10,000 lines appended in random pieces are read once each, in order', async () => {
    const f = file();
    writeFileSync(f, '');
    const expected = Array.from({ length: 10_000 }, (_, i) => `line ${i} ${'ü€😀'.repeat(i % 7)}`);
    const data = Buffer.from(expected.map((l, i) => (i % 3 === 0 ? `${l}\r\n` : `${l}\n`)).join(''));
    let seed = 42; // deterministic pseudo-random piece sizes
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n) + 1;
    const got: string[] = [];
    let offset = 0;
    for (let written = 0; written < data.length;) {
      const n = Math.min(rand(3000), data.length - written);
      appendFileSync(f, data.subarray(written, written + n));
      written += n;
      const r = await readLines(f, offset, { maxBytes: 1024 });
      got.push(...r.lines);
      offset = r.offset;
    }
    got.push(...(await drain(f, offset, 1024, true)).lines);
    expect(got.length).toBe(expected.length);
    expect(got).toEqual(expected);
  });

  it('final flush of a file without trailing newline, across bounded reads', async () => {
    const f = file();
    writeFileSync(f, 'x\n'.repeat(100) + 'tail');
    const { lines, offset } = await drain(f, 0, 32, true);
    expect(lines).toEqual([...Array(100).fill('x'), 'tail']);
    expect(offset).toBe(204);
  });
});

describe('readRunnerEvents', () => {
  it('parses JSON objects and keeps anything else as invalid', async () => {
    const f = file();
    const garbage = 'x'.repeat(5000);
    writeFileSync(f, `{"phase":"plan"}\n[1,2]\n\n42\nnot json\n${garbage}\n{"partial":`);
    const a = await readRunnerEvents(f, 0);
    expect(a.events).toEqual([
      { phase: 'plan' },
      { invalid: true, text: '[1,2]' },
      { invalid: true, text: '42' },
      { invalid: true, text: 'not json' },
      { invalid: true, text: 'x'.repeat(4096) },
    ]);
    const b = await readRunnerEvents(f, a.offset, { final: true });
    expect(b.events).toEqual([{ invalid: true, text: '{"partial":' }]);
  });
});

describe('readRunnerEvents: an over-long line is reported with its own size', () => {
  /** Reads like the watcher: from the kept cursor and skip flag, until nothing more moves. */
  async function events(f: string, at: { offset: number; skipping: boolean }, final = false) {
    const out: Record<string, unknown>[] = [];
    for (;;) {
      const r = await readRunnerEvents(f, at.offset, { final, skipping: at.skipping });
      out.push(...r.events);
      const moved = r.offset !== at.offset || r.skipping !== at.skipping;
      at.offset = r.offset;
      at.skipping = r.skipping;
      if (!r.more && !moved) return out;
    }
  }

  it('a line far longer than one read: bytes is the whole line, not what was read', async () => {
    const f = file();
    const long = `{"x":"${'a'.repeat(500_000)}"}`;
    writeFileSync(f, `${long}\n{"ok":1}\n`);
    const got = await events(f, { offset: 0, skipping: false });
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ invalid: true, bytes: Buffer.byteLength(long) });
    expect(got[1]).toEqual({ ok: 1 });
  });

  it('a long line within one read: bytes is the line without its CRLF', async () => {
    const f = file();
    const long = `{"x":"${'é'.repeat(20_000)}"}`;
    writeFileSync(f, `${long}\r\n`);
    const got = await events(f, { offset: 0, skipping: false });
    expect(got).toEqual([expect.objectContaining({ invalid: true, bytes: Buffer.byteLength(long) })]);
  });

  it('a long line still being written is reported once its end is there, with its whole size', async () => {
    const f = file();
    const at = { offset: 0, skipping: false };
    writeFileSync(f, `{"ok":1}\n{"x":"${'b'.repeat(300_000)}`);
    expect(await events(f, at)).toEqual([{ ok: 1 }]);
    appendFileSync(f, `${'b'.repeat(300_000)}"}\n{"ok":2}\n`);
    const got = await events(f, at);
    expect(got).toEqual([expect.objectContaining({ invalid: true, bytes: 600_008 }), { ok: 2 }]);
  });

  it('the writer done with a long last line without newline: bytes is to the end', async () => {
    const f = file();
    writeFileSync(f, `{"x":"${'c'.repeat(400_000)}`);
    const got = await events(f, { offset: 0, skipping: false }, true);
    expect(got).toEqual([expect.objectContaining({ invalid: true, bytes: 400_006 })]);
  });
});

describe('hostile runner events (property)', () => {
  const deep = (n: number, open: string, close: string) => `{"a":${open.repeat(n)}${close.repeat(n)}}`;
  const line = fc.oneof(
    fc.integer({ min: 1, max: 100_000 }).map((n) => Buffer.from(deep(n, '[', ']'))),
    fc.integer({ min: 1, max: 20_000 }).map((n) => Buffer.from(deep(n, '{"b":', '}').replace(/}$/, ''))),
    fc.integer({ min: 1, max: 200_000 }).map((n) => Buffer.from(`{"x":"${'y'.repeat(n)}"}`)),
    fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b.filter((x) => x !== 0x0a))),
    fc.json().map((j) => Buffer.from(j.replace(/\n/g, ' '))),
    fc.constant(Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
  );

  it('never throws; every line becomes one event that serialises, objects as written, the rest marked', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 6 }), async (lines) => {
        const f = file();
        writeFileSync(f, Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
        const events: Record<string, unknown>[] = [];
        let offset = 0;
        let skipping = false;
        for (let i = 0; i < 100; i++) {
          const r = await readRunnerEvents(f, offset, { final: true, skipping });
          events.push(...r.events);
          if (!r.more) break;
          ({ offset, skipping } = r);
        }
        const nonBlank = lines.filter((l) => l.toString('utf8').trim() !== '').length;
        expect(events).toHaveLength(nonBlank);
        for (const e of events) {
          expect(typeof e).toBe('object');
          expect(() => JSON.stringify(e)).not.toThrow();
          if (e.invalid === true && 'error' in e) expect(e.bytes).toBeGreaterThan(0);
        }
      }),
      { numRuns: 40 },
    );
  });
});
