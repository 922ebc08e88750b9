// An attempt's log by range (GET /v1/attempts/{id}/log): the stored log_line texts first, then,
// when the log_line cap was reached, the rest of the raw output from the run dir (stdout from
// where the cap hit, then stderr once the attempt has ended), masked. Costs O(the range asked).
// After retention (SPEC §11) the same bytes come from the archive: the stored texts from the archived
// log once its events were pruned, the raw rest from its archived copy once the run dir was removed.
import { open } from 'node:fs/promises';
import fs from 'node:fs';
import type { AttemptsTable } from '../store/schema.ts';
import { selectAttemptLog, selectLogRange, selectLogTail } from '../store/logs.ts';
import { selectArchiveInfo, selectArchivedLog, selectArchivedRest } from '../store/archive.ts';
import { selectDeploymentById } from '../store/deployments.ts';
import { makeRedactor } from '../runner/redact.ts';
import { runDirPaths } from '../runner/rundir.ts';
import { LOG_PAGE_DEFAULT } from './api.ts';
import { findPlan } from '../config/load.ts';
import { secretValues, type Ctx } from './context.ts';

export interface LogQuery {
  offset?: number;
  /** bytes, default LOG_PAGE_DEFAULT */
  limit?: number;
  /** the last N lines instead of a byte range */
  tail?: number;
}

export interface LogPage {
  text: string;
  next_offset: number;
}

/** A part of the raw output past the cap: bytes [from, to) of a run-dir file, or of its archived copy. */
interface Segment {
  from: number;
  to: number;
  read(at: number, length: number): Promise<Buffer>;
}

/** Where the stored (log_line) part comes from: the events table, or the archived text once pruned. */
interface Stored {
  /** Bytes from `from`, at least up to `to` (or to the end of the stored part); the caller cuts them. */
  range(from: number, to: number): Promise<Buffer>;
  tail(n: number): Promise<string>;
}

function fileSegment(file: string, from: number): Segment {
  return { from, to: size(file), read: (at, length) => readAt(file, at, length) };
}

function bufferSegment(buf: Buffer, from: number): Segment {
  return {
    from,
    to: from + buf.length,
    read: async (at, length) => buf.subarray(at - from, Math.max(at - from, at - from + length)),
  };
}

/**
 * From the events table. Retention may prune them between the archive check and this read: lines
 * missing where they must be (the one holding `from`, or fewer than asked of the tail) mean exactly
 * that, and the archive, committed with the deletion, has them.
 */
function tableStored(ctx: Ctx, attemptId: string, lineCount: number): Stored {
  return {
    async range(from, to) {
      const lines = await selectLogRange(ctx.store.db, attemptId, from, to);
      if (lines.length === 0 || lines[0].offset > from) return archivedStored(ctx, attemptId).range(from, to);
      return Buffer.from(lines.map((l) => `${l.text}\n`).join(''), 'utf8').subarray(from - lines[0].offset);
    },
    async tail(n) {
      const lines = await selectLogTail(ctx.store.db, attemptId, n);
      if (lines.length < Math.min(n, lineCount)) return archivedStored(ctx, attemptId).tail(n);
      return lines.map((l) => `${l.text}\n`).join('');
    },
  };
}

function archivedStored(ctx: Ctx, attemptId: string): Stored {
  let text: Promise<Buffer> | null = null;
  const all = () => (text ??= selectArchivedLog(ctx.store.db, attemptId));
  return {
    async range(from) {
      return (await all()).subarray(from);
    },
    async tail(n) {
      const lines = (await all()).toString('utf8').split('\n');
      lines.pop(); // the text ends with "\n": the last element is empty
      return lines
        .slice(-n)
        .map((l) => `${l}\n`)
        .join('');
    },
  };
}

function size(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Shortens buf so it does not end inside a UTF-8 sequence. */
function wholeChars(buf: Buffer): Buffer {
  for (let i = buf.length - 1, back = 0; i >= 0 && back < 4; i--, back++) {
    const b = buf[i];
    if ((b & 0xc0) === 0x80) continue;
    if (b < 0x80) return buf;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
    return buf.length - i >= need ? buf : buf.subarray(0, i);
  }
  return buf;
}

export async function readLog(ctx: Ctx, row: AttemptsTable, q: LogQuery): Promise<LogPage> {
  const db = ctx.store.db;
  const log = await selectAttemptLog(db, row.id);
  const archive = await selectArchiveInfo(db, row.id);
  const stored = archive?.pruned ? archivedStored(ctx, row.id) : tableStored(ctx, row.id, log.lines);
  const segments: Segment[] = [];
  if (log.cap_stdout !== null && archive?.rest) {
    const rest = await selectArchivedRest(db, row.id);
    segments.push(bufferSegment(rest.stdout, log.cap_stdout));
    segments.push(bufferSegment(rest.stderr, log.cap_stderr ?? 0));
  } else if (log.cap_stdout !== null && row.run_dir) {
    const files = runDirPaths(row.run_dir);
    segments.push(fileSegment(files.stdout, log.cap_stdout));
    // stderr's remainder goes after stdout's, so only once stdout can no longer grow.
    if (row.state !== 'queued' && row.state !== 'running')
      segments.push(fileSegment(files.stderr, log.cap_stderr ?? 0));
  }
  const total = segments.reduce((n, s) => n + Math.max(0, s.to - s.from), log.bytes);

  if (q.tail !== undefined) {
    if (segments.length === 0) return { text: await stored.tail(q.tail), next_offset: log.bytes };
    // Capped: the last lines are in the raw files; a bounded window from the end holds them.
    const from = Math.max(0, total - 1024 * 1024);
    const page = await readRange(ctx, row, stored, log.bytes, segments, from, total - from);
    const lines = page.text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return {
      text: lines
        .slice(-q.tail)
        .map((l) => `${l}\n`)
        .join(''),
      next_offset: page.next_offset,
    };
  }
  const offset = q.offset ?? 0;
  if (offset >= total) return { text: '', next_offset: total };
  return readRange(ctx, row, stored, log.bytes, segments, offset, q.limit ?? LOG_PAGE_DEFAULT);
}

async function readRange(
  ctx: Ctx,
  row: AttemptsTable,
  source: Stored,
  stored: number,
  segments: Segment[],
  offset: number,
  limit: number,
): Promise<LogPage> {
  const parts: string[] = [];
  let pos = offset;
  let left = limit;
  if (pos < stored) {
    const all = await source.range(pos, Math.min(stored, pos + left));
    let got: Buffer<ArrayBufferLike> = all.subarray(0, Math.min(all.length, left));
    if (got.length === left) {
      // Cut short by the limit: end on a whole line when the page holds one, so a reader that
      // counts lines (the dashboard) stays in step with the log_line events.
      const nl = got.lastIndexOf(0x0a);
      got = nl >= 0 ? got.subarray(0, nl + 1) : wholeChars(got);
    }
    parts.push(got.toString('utf8'));
    pos += got.length;
    left -= got.length;
  }
  if (pos >= stored && left > 0 && segments.length > 0) {
    const dep = await selectDeploymentById(ctx.store.db, row.deployment_id);
    const redact = makeRedactor(
      secretValues(
        dep ? findPlan(ctx.config, dep.plan) : undefined,
        JSON.parse(row.params),
        row.secret_params ?? dep?.secret_params,
      ),
    );
    let start = stored;
    for (const s of segments) {
      const len = Math.max(0, s.to - s.from);
      if (left > 0 && pos < start + len) {
        const at = s.from + (pos - start);
        const want = Math.min(left, s.to - at);
        let buf: Buffer<ArrayBufferLike> = await s.read(at, want);
        // End on a line when one ends in the chunk, so a secret is never split between two reads.
        const nl = buf.lastIndexOf(0x0a);
        if (buf.length === left && nl >= 0) buf = buf.subarray(0, nl + 1);
        else if (buf.length === left) buf = wholeChars(buf);
        // Masked with the bytes around the page that a secret could reach into, so a secret cut
        // by the page's start or end (any offset a reader asks for) is still masked whole.
        const ctxBytes = Math.max(0, redact.maxBytes - 1);
        const before = await s.read(Math.max(s.from, at - ctxBytes), Math.min(ctxBytes, at - s.from));
        const afterAt = at + buf.length;
        const after = await s.read(afterAt, Math.max(0, Math.min(ctxBytes, s.to - afterAt)));
        parts.push(redact.window(before.toString('utf8'), buf.toString('utf8'), after.toString('utf8')));
        pos += buf.length;
        left -= buf.length;
        if (buf.length < want) break;
      }
      start += len;
    }
  }
  return { text: parts.join(''), next_offset: pos };
}

async function readAt(file: string, at: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await fh.read(buf, 0, length, at);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
