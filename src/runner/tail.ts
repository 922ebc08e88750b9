// Line tailing by byte offset. The caller keeps the offset (in the DB), so a restart resumes
// exactly where the last committed read ended: no duplicate, no lost line.
import { open } from 'node:fs/promises';
import { cutLine } from './redact.ts';

export interface ReadOptions {
  /** The writer is done: also return a trailing line without "\n". */
  final?: boolean;
  /** Upper bound on bytes read per call. */
  maxBytes?: number;
}

export interface ReadResult {
  lines: string[];
  /** Byte offset just after the last byte consumed. */
  offset: number;
  /** Bytes remain after `offset` that this call did not look at: call again. */
  more: boolean;
}

const NL = 0x0a;

/** Length of buf[0, end) shortened so it does not end inside a UTF-8 sequence. */
function utf8Boundary(buf: Buffer, end: number): number {
  // Back up over at most 3 continuation bytes to the lead byte and drop the incomplete char.
  for (let i = end - 1, back = 0; i >= 0 && back < 4; i--, back++) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue;
    if (b < 0x80) return end;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return end - i >= need ? end : i > 0 ? i : end; // never return 0: we must make progress
  }
  return end; // not UTF-8 anyway
}

export async function readLines(file: string, offset: number, opts: ReadOptions = {}): Promise<ReadResult> {
  const maxBytes = Math.max(16, opts.maxBytes ?? 1024 * 1024);
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], offset, more: false };
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    if (size <= offset) return { lines: [], offset, more: false };
    const buf = Buffer.allocUnsafe(Math.min(maxBytes, size - offset));
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    const atEof = offset + bytesRead >= size;
    const lines: string[] = [];
    let start = 0;
    for (let nl = buf.indexOf(NL, 0); nl !== -1 && nl < bytesRead; nl = buf.indexOf(NL, start)) {
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      lines.push(buf.toString('utf8', start, end));
      start = nl + 1;
    }
    if (start < bytesRead) {
      if (atEof && opts.final) {
        lines.push(buf.toString('utf8', start, bytesRead).replace(/\r$/, ''));
        start = bytesRead;
      } else if (start === 0 && bytesRead === maxBytes) {
        // A line of maxBytes or more: emit it in pieces rather than stall. (A piece boundary
        // right before its "\n" leaves one empty piece; rare and harmless.)
        let cut = utf8Boundary(buf, bytesRead);
        if (cut > 1 && buf[cut - 1] === 0x0d) cut--; // keep "\r\n" together
        lines.push(buf.toString('utf8', 0, cut));
        start = cut;
      }
    }
    return { lines, offset: offset + start, more: !atEof };
  } finally {
    await fh.close();
  }
}

export interface EventsResult {
  events: Record<string, unknown>[];
  offset: number;
  more: boolean;
}

/** Like readLines, for a JSON-lines file; a line that is not a JSON object is kept as invalid. */
export async function readRunnerEvents(
  file: string,
  offset: number,
  opts: ReadOptions = {},
): Promise<EventsResult> {
  const { lines, offset: next, more } = await readLines(file, offset, opts);
  const events: Record<string, unknown>[] = [];
  for (const line of lines) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      events.push(value as Record<string, unknown>);
    } else {
      events.push({ invalid: true, text: cutLine(line, 4096) });
    }
  }
  return { events, offset: next, more };
}
