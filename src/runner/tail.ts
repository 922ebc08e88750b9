// Line tailing by byte offset, bounded. The caller keeps the offset and the "inside an over-long
// line" flag (in the DB), so a restart resumes exactly where the last committed read ended: no
// duplicate, no lost line. Each call reads at most maxBytes and returns at most maxLines, whatever
// the file holds, so memory stays bounded however much a plan prints and however long its lines.
import { open } from 'node:fs/promises';
import { cutLine } from './redact.ts';

/** Characters kept of a line (SPEC §3). */
export const LINE_CUT = 4096;
/**
 * Bytes of a line kept for masking and cutting: twice what always holds LINE_CUT code points
 * (UTF-8 is at most 4 bytes each), so a secret straddling the cut is still masked whole.
 */
const LONG_LINE_BYTES = LINE_CUT * 8;

export interface ReadOptions {
  /** The writer is done: also return a trailing line without "\n". */
  final?: boolean;
  /** Upper bound on bytes read per call (at least 2 × LONG_LINE_BYTES, so a long line is always seen as one). */
  maxBytes?: number;
  /** Upper bound on lines returned per call. */
  maxLines?: number;
  /** The previous call ended inside an over-long line: skip up to and including its "\n". */
  skipping?: boolean;
}

export interface ReadResult {
  /** Lines without their "\n" (and "\r"); an over-long line comes out shortened (cut it after masking). */
  lines: string[];
  /** Byte offset just after the line, for each line (where the next one starts). */
  ends: number[];
  /** Byte offset where each line starts. */
  starts: number[];
  /** Each line's size in bytes without its "\n" or "\r\n" (for a line cut without its end: what was read). */
  sizes: number[];
  /** Byte offset just after the last byte consumed. */
  offset: number;
  /** Bytes remain after `offset` that this call did not look at: call again. */
  more: boolean;
  /** Still inside an over-long line whose start was returned: the next call skips to its end. */
  skipping: boolean;
}

const NL = 0x0a;
export const DEFAULT_MAX_BYTES = 128 * 1024;

/** Length of buf[0, end) shortened so it does not end inside a UTF-8 sequence. */
function utf8Boundary(buf: Buffer, end: number): number {
  for (let i = end - 1, back = 0; i >= 0 && back < 4; i--, back++) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue;
    if (b < 0x80) return end;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return end - i >= need ? end : i;
  }
  return end; // not UTF-8 anyway
}

/** A line's text from buf[start, end), decoding at most what the cut keeps. */
function lineText(buf: Buffer, start: number, end: number): string {
  if (end > start && buf[end - 1] === 0x0d) end--;
  if (end - start > LONG_LINE_BYTES) end = start + utf8Boundary(buf.subarray(start), LONG_LINE_BYTES);
  return buf.toString('utf8', start, end);
}

export async function readLines(file: string, offset: number, opts: ReadOptions = {}): Promise<ReadResult> {
  const maxBytes = Math.max(2 * LONG_LINE_BYTES, opts.maxBytes ?? DEFAULT_MAX_BYTES);
  const maxLines = Math.max(1, opts.maxLines ?? Number.MAX_SAFE_INTEGER);
  let skipping = opts.skipping ?? false;
  const none = { lines: [], ends: [], starts: [], sizes: [], offset, more: false, skipping };
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return none;
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    if (size <= offset) return { ...none, skipping: skipping && !opts.final };
    const buf = Buffer.allocUnsafe(Math.min(maxBytes, size - offset));
    const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
    const atEof = offset + bytesRead >= size;
    const lines: string[] = [];
    const ends: number[] = [];
    const starts: number[] = [];
    const sizes: number[] = [];
    let start = 0;
    if (skipping) {
      const nl = buf.indexOf(NL, 0);
      if (nl === -1 || nl >= bytesRead) {
        // All of this read is still the over-long line; the writer being done ends it.
        const done = atEof && opts.final === true;
        return { lines, ends, starts, sizes, offset: offset + bytesRead, more: !atEof, skipping: !done };
      }
      start = nl + 1;
      skipping = false;
    }
    while (lines.length < maxLines) {
      const nl = buf.indexOf(NL, start);
      if (nl !== -1 && nl < bytesRead) {
        starts.push(offset + start);
        sizes.push(nl - start - (nl > start && buf[nl - 1] === 0x0d ? 1 : 0));
        lines.push(lineText(buf, start, nl));
        start = nl + 1;
        ends.push(offset + start);
        continue;
      }
      if (start >= bytesRead) break;
      if (bytesRead - start > LONG_LINE_BYTES) {
        // An over-long line without its "\n" in this read: one event now, the rest skipped later.
        starts.push(offset + start);
        sizes.push(bytesRead - start);
        lines.push(lineText(buf, start, bytesRead));
        start = bytesRead;
        ends.push(offset + start);
        skipping = !(atEof && opts.final);
      } else if (atEof && opts.final) {
        starts.push(offset + start);
        sizes.push(bytesRead - start);
        lines.push(lineText(buf, start, bytesRead));
        start = bytesRead;
        ends.push(offset + start);
      }
      break;
    }
    const stopped = lines.length >= maxLines && start < bytesRead;
    return { lines, ends, starts, sizes, offset: offset + start, more: !atEof || stopped, skipping };
  } finally {
    await fh.close();
  }
}

export interface EventsResult {
  events: Record<string, unknown>[];
  offset: number;
  more: boolean;
  skipping: boolean;
}

/** Deepest nesting of arrays and objects a runner event may have (parsing and masking recurse). */
export const EVENT_MAX_DEPTH = 64;

/**
 * Whether JSON text nests deeper than `max`, counted on the raw text without recursion, so a
 * hostile line never reaches JSON.parse (or a recursive walk) with a depth that overflows the stack.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped char
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** How far past the kept bytes the end of an over-long event line is looked for, to report its size. */
export const EVENT_SCAN_BYTES = 16 * 1024 * 1024;

/**
 * Where the line that continues at `from` ends: the offset of its "\n", or of the end of the file
 * (`eof`), or null when it is longer than `limit` bytes from `from`. Reads in chunks, keeps nothing.
 */
async function findLineEnd(
  file: string,
  from: number,
  limit: number,
): Promise<{ at: number; eof: boolean } | null> {
  const fh = await open(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(64 * 1024);
    for (let pos = from; pos - from < limit;) {
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, pos);
      if (bytesRead === 0) return { at: pos, eof: true };
      const nl = chunk.subarray(0, bytesRead).indexOf(NL);
      if (nl !== -1) return { at: pos + nl, eof: false };
      pos += bytesRead;
    }
    return null;
  } finally {
    await fh.close();
  }
}

/**
 * Like readLines, for a JSON-lines file. A line that is not a JSON object is kept as invalid with its
 * text; one that cannot be parsed safely (longer than the kept bytes, or nested deeper than
 * EVENT_MAX_DEPTH) becomes a marker with its size in bytes (without its newline) and why, and the
 * start of its text. An over-long line is reported once its end is in the file (or the writer is
 * done), so the size is the line's; one still growing past EVENT_SCAN_BYTES is reported without it.
 */
export async function readRunnerEvents(
  file: string,
  offset: number,
  opts: ReadOptions = {},
): Promise<EventsResult> {
  const read = await readLines(file, offset, opts);
  const { lines, starts, sizes } = read;
  let { offset: next, more, skipping } = read;
  const events: Record<string, unknown>[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    let bytes: number | undefined = sizes[i];
    const cut = cutLine(line, LINE_CUT);
    // Cut by readLines: it cannot be parsed whole.
    const long = sizes[i] > LONG_LINE_BYTES;
    if (long && i === lines.length - 1 && skipping) {
      // Cut before its end: find the end, to report the line's size and step past it at once.
      const end = await findLineEnd(file, next, EVENT_SCAN_BYTES - sizes[i]);
      if (end && !end.eof) {
        bytes = end.at - starts[i];
        next = end.at + 1;
        skipping = false;
        more = true;
      } else if (end && opts.final) {
        bytes = end.at - starts[i];
        next = end.at;
        skipping = false;
      } else if (end) {
        // Still being written: report it when its end is there (it is read again from its start).
        next = starts[i];
        skipping = false;
        more = false;
        break;
      } else {
        bytes = undefined; // past the scan: skipped to its end as before, size unknown
      }
    }
    if (long || nestsDeeperThan(line, EVENT_MAX_DEPTH)) {
      const error = long
        ? `line longer than ${LONG_LINE_BYTES} bytes`
        : `nested deeper than ${EVENT_MAX_DEPTH} levels`;
      events.push(
        bytes === undefined
          ? { invalid: true, error, text: cut }
          : { invalid: true, bytes, error, text: cut },
      );
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      events.push(value as Record<string, unknown>);
    } else {
      events.push({ invalid: true, text: cut });
    }
  }
  return { events, offset: next, more, skipping };
}
