// Retention (SPEC §11), in the background, in small batches. Two jobs:
//
// - logs: an attempt that ended longer ago than `retention.logs` has its log_line and runner_event events
//   archived (log_archive: the log text as served and the events, gzip) and deleted from the events table,
//   the archive written in the same transaction as the deletion, so a crash leaves both or neither. One
//   attempt per transaction, at most DELETE_BATCH events deleted in each (a bigger attempt finishes in
//   later transactions; its archive is complete from the first, so nothing is ever missing). Work is read
//   in pages and compressed as a stream outside the transaction and checked unchanged inside it (see
//   archive()), so memory holds one page and the compressed archive, whatever the attempt's size; and
//   the loop rests between batches as long as the batch took, so the API keeps at least half of the store. One instance prunes
//   at a time: it holds the `retention` row's lease, and every batch re-checks it first (fencePrune).
// - run dirs: each instance removes the run dirs of its own attempts (the dirs are on its disk) that
//   ended longer ago than `retention.run_dirs`, once everything in them is in the database: the output
//   past the log_line cap is first copied to the archive; an attempt whose output was not all read into
//   events keeps its dir.
//
// Every other event type stays: state transitions are never pruned, so the stored state is still the
// fold of its events. `unknown` attempts are left alone (a late result may still arrive from their dir),
// and so is an attempt whose events an enabled webhook selecting runner_event or log_line has not yet
// delivered (its cursor is behind them).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  compress,
  countOutputEvents,
  deleteArchivedEvents,
  finishDeleting,
  GzipWriter,
  saveArchive,
  saveRest,
  selectArchiveInfo,
  selectDeleting,
  selectLogLinesPage,
  selectOutputEventsPage,
  type ArchivedEvent,
  type OutputEvent,
} from '../store/archive.ts';
import { selectAttemptById } from '../store/attempts.ts';
import { selectAttemptLog } from '../store/logs.ts';
import {
  claimPruneLease,
  clearRunDir,
  fencePrune,
  releasePruneLease,
  selectPruneCandidates,
  selectRunDirCandidates,
} from '../store/retention.ts';
import { selectWebhooks } from '../store/webhooks.ts';
import { selectDbNow } from '../store/instances.ts';
import { runDirPaths } from '../runner/rundir.ts';
import type { Ctx } from './context.ts';
import { nowIso } from './ids.ts';

/** Most events one transaction deletes. */
export const DELETE_BATCH = 2000;
/** Most events read at once when archiving (a row is at most a cut log line or a bounded runner event). */
export const ARCHIVE_PAGE = 1000;
/** Attempts looked up per candidate query. */
const CANDIDATES = 20;
/** How often a pass runs while the server is up. */
export const RETENTION_INTERVAL_MS = 60_000;

/** What a batch did, for tests that check batches never overlap (two instances) and crash between them. */
export interface BatchReport {
  kind: 'archive' | 'delete' | 'rest' | 'run_dir';
  attemptId: string;
  instance: string;
  startedAt: number;
  endedAt: number;
}

export interface RetentionHooks {
  /** After each committed batch. */
  onBatch?: (b: BatchReport) => void | Promise<void>;
  /** Inside the archiving transaction, after its writes and before commit (a crash there rolls back). */
  beforeCommit?: (attemptId: string) => void;
  /** Rows per page when archiving (default ARCHIVE_PAGE); tests make it small. */
  pageRows?: number;
  /** After each page is read while archiving, with its row count. */
  onPage?: (rows: number) => void;
}

class LostLease extends Error {}

/** An event as archived: a log_line's text is in the archived log at its offset, not repeated. */
function toArchived(e: OutputEvent): ArchivedEvent {
  const data = JSON.parse(e.data) as Record<string, unknown>;
  return e.type === 'log_line' && e.log_offset !== null
    ? { seq: e.seq, at: e.at, type: 'log_line', stream: String(data.stream), offset: e.log_offset }
    : { seq: e.seq, at: e.at, type: e.type, data };
}

/** Bytes [from, size) of a file, or empty. */
function readFrom(file: string, from: number): Buffer {
  try {
    const buf = fs.readFileSync(file);
    return buf.subarray(Math.min(from, buf.length));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
}

function size(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

export class Retention {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Attempts whose stored log disagrees with its events: left as they are (logged once). */
  private skipped = new Set<string>();

  constructor(
    private readonly ctx: Ctx,
    private readonly hooks: RetentionHooks = {},
  ) {}

  get enabled(): boolean {
    const r = this.ctx.config.retention;
    return Boolean(r && (r.logsMs !== null || r.runDirsMs !== null));
  }

  start(): void {
    if (!this.enabled) return;
    const tick = () => {
      void this.pass().catch((err) => this.ctx.outage.failed('retention', err));
    };
    this.timer = setInterval(tick, RETENTION_INTERVAL_MS);
    this.timer.unref();
    setImmediate(tick);
  }

  /** Stops after the batch in flight (a batch is one transaction: it commits whole or not at all). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One pass of both jobs; concurrent callers share it. */
  pass(): Promise<void> {
    if (!this.running) {
      this.running = this.passOnce().finally(() => {
        this.running = null;
      });
    }
    return this.running;
  }

  private async passOnce(): Promise<void> {
    const r = this.ctx.config.retention;
    if (!r || this.stopped) return;
    if (r.logsMs !== null) await this.pruneLogs(r.logsMs);
    if (r.runDirsMs !== null) await this.removeRunDirs(r.runDirsMs);
  }

  /** Rests as long as the batch took (at least a little), so the API gets the store at least half the time. */
  private async rest(began: number): Promise<void> {
    await sleep(Math.max(5, performance.now() - began));
  }

  private async report(kind: BatchReport['kind'], attemptId: string, startedAt: number): Promise<void> {
    await this.hooks.onBatch?.({
      kind,
      attemptId,
      instance: this.ctx.instanceId,
      startedAt,
      endedAt: performance.now() + performance.timeOrigin,
    });
  }

  /** Takes or extends the prune lease, for a lease TTL on the database's clock. */
  private claim(): Promise<boolean> {
    return claimPruneLease(this.ctx.store.db, this.ctx.instanceId, this.ctx.config.leaseTtlMs, nowIso());
  }

  /** A due time `ageMs` ago on the database's clock (ended_at is compared with it). */
  private async cutoff(ageMs: number): Promise<string> {
    return new Date((await selectDbNow(this.ctx.store.db, this.ctx.store.dialect)) - ageMs).toISOString();
  }

  // ---- logs -------------------------------------------------------------------------------------

  private async pruneLogs(logsMs: number): Promise<void> {
    const { db } = this.ctx.store;
    const me = this.ctx.instanceId;
    if (!(await this.claim())) return; // another instance prunes
    try {
      // First what an earlier pass left half-deleted, then new attempts.
      for (const d of await selectDeleting(db)) {
        if (this.stopped) return;
        await this.finishDeletion(d.attempt_id, d.last_seq);
      }
      // Tried once per pass: one that changed under its read (or disagrees) waits for the next pass.
      const tried = new Set<string>();
      const horizon = await this.webhookHorizon();
      for (;;) {
        if (this.stopped) return;
        const cutoff = await this.cutoff(logsMs);
        const ids = (
          await selectPruneCandidates(db, cutoff, CANDIDATES + this.skipped.size + tried.size)
        ).filter((id) => !this.skipped.has(id) && !tried.has(id));
        if (ids.length === 0) return;
        for (const id of ids) {
          if (this.stopped) return;
          if (!(await this.claim())) return;
          tried.add(id);
          await this.archive(id, cutoff, horizon);
        }
      }
    } catch (err) {
      if (err instanceof LostLease) return;
      throw err;
    } finally {
      await releasePruneLease(db, me).catch(() => undefined);
    }
  }

  /** The lowest cursor of the enabled webhooks that deliver pruned types; events above it are kept. */
  private async webhookHorizon(): Promise<number> {
    const hooks = this.ctx.config.webhooks.filter((h) =>
      h.events.some((t) => t === 'log_line' || t === 'runner_event'),
    );
    if (hooks.length === 0) return Number.MAX_SAFE_INTEGER;
    const rows = new Map((await selectWebhooks(this.ctx.store.db)).map((r) => [r.name, r]));
    let min = Number.MAX_SAFE_INTEGER;
    for (const h of hooks) {
      const r = rows.get(h.name);
      if (!r) return 0; // not started yet: its cursor is not known
      if (r.enabled) min = Math.min(min, Number(r.delivered_seq));
    }
    return min;
  }

  /**
   * Archives one attempt. Its events are read in pages of `pageRows` by seq (and its log text in pages
   * by log_offset) and fed to two gzip streams, before the transaction; inside it the count and the
   * highest seq are checked unchanged. Not read inside the transaction: on SQLite that would hold the
   * one writer across every page, on PostgreSQL keep a transaction open as long; and under READ
   * COMMITTED the pages would not be one snapshot anyway. The check is enough on both: these events are
   * only appended (seqs rise, in commit order: the counter row serialises them) and only this pruner,
   * under the lease, deletes them, so the same count up to the same highest seq is the same set.
   */
  private async archive(id: string, cutoff: string, horizon: number): Promise<void> {
    const { db } = this.ctx.store;
    const began = performance.now();
    const startedAt = began + performance.timeOrigin;
    const row = await selectAttemptById(db, id);
    if (!row || !row.ended_at || row.ended_at >= cutoff) return;
    if ((await countOutputEvents(db, id)).last > horizon) return; // a webhook still owes them
    const pageRows = this.hooks.pageRows ?? ARCHIVE_PAGE;
    const eventsGz = new GzipWriter();
    const logGz = new GzipWriter();
    try {
      // The events as one JSON array, written element by element: the bytes JSON.stringify(array) gives.
      let count = 0;
      let lastSeq = 0;
      await eventsGz.write(Buffer.from('['));
      for (;;) {
        if (this.stopped) return; // close() waits for this pass
        const page = await selectOutputEventsPage(db, id, lastSeq, pageRows);
        this.hooks.onPage?.(page.length);
        if (page.length === 0) break;
        const json = page.map((e) => JSON.stringify(toArchived(e))).join(',');
        await eventsGz.write(Buffer.from(count > 0 ? `,${json}` : json, 'utf8'));
        count += page.length;
        lastSeq = page[page.length - 1].seq;
        if (page.length < pageRows) break;
      }
      await eventsGz.write(Buffer.from(']'));
      if (lastSeq > horizon) return;
      // The log text: the texts of those log lines, each + "\n", in log order.
      const log = await selectAttemptLog(db, id);
      let textBytes = 0;
      for (let after = -1; ;) {
        if (this.stopped) return; // close() waits for this pass
        const page = await selectLogLinesPage(db, id, after, lastSeq, pageRows);
        this.hooks.onPage?.(page.length);
        if (page.length === 0) break;
        const buf = Buffer.from(page.map((l) => `${l.text}\n`).join(''), 'utf8');
        textBytes += buf.length;
        await logGz.write(buf);
        after = page[page.length - 1].offset;
        if (page.length < pageRows) break;
      }
      if (textBytes !== log.bytes) {
        this.skipped.add(id);
        this.ctx.log.warn(
          { attempt_id: id, log_bytes: log.bytes, event_bytes: textBytes },
          'retention: log events do not add up to the stored log; left unpruned',
        );
        return;
      }
      const [logBuf, eventsBuf] = await Promise.all([logGz.end(), eventsGz.end()]);
      await this.saveArchived(id, startedAt, began, {
        log: logBuf,
        logBytes: textBytes,
        events: eventsBuf,
        count,
        lastSeq,
      });
    } finally {
      logGz.destroy();
      eventsGz.destroy();
    }
  }

  /** The archiving transaction: the archive row and the first deletion batch, or nothing. */
  private async saveArchived(
    id: string,
    startedAt: number,
    began: number,
    a: { log: Buffer; logBytes: number; events: Buffer; count: number; lastSeq: number },
  ): Promise<void> {
    const { db } = this.ctx.store;
    const { count, lastSeq } = a;
    const at = nowIso();
    const done = await db.transaction().execute(async (trx) => {
      if (!(await fencePrune(trx, this.ctx.instanceId, at, count > 0 ? lastSeq + 1 : undefined)))
        throw new LostLease();
      const now = await countOutputEvents(trx, id);
      if (now.n !== count || now.last !== lastSeq) return false; // changed since read: next pass
      if ((await selectArchiveInfo(trx, id))?.pruned) return false;
      await saveArchive(trx, {
        attemptId: id,
        at,
        log: a.log,
        logBytes: a.logBytes,
        events: a.events,
        eventCount: count,
        lastSeq,
        deleting: count > DELETE_BATCH,
      });
      await deleteArchivedEvents(trx, id, lastSeq, DELETE_BATCH);
      this.hooks.beforeCommit?.(id);
      return true;
    });
    if (!done) return;
    await this.report('archive', id, startedAt);
    await this.rest(began);
    if (count > DELETE_BATCH) await this.finishDeletion(id, lastSeq);
  }

  /** Deletes the rest of an archived attempt's events, a batch per transaction. */
  private async finishDeletion(id: string, lastSeq: number): Promise<void> {
    const { db } = this.ctx.store;
    for (;;) {
      if (this.stopped) return;
      const began = performance.now();
      const startedAt = began + performance.timeOrigin;
      const n = await db.transaction().execute(async (trx) => {
        if (!(await fencePrune(trx, this.ctx.instanceId, nowIso()))) throw new LostLease();
        const gone = await deleteArchivedEvents(trx, id, lastSeq, DELETE_BATCH);
        if (gone < DELETE_BATCH) await finishDeleting(trx, id);
        return gone;
      });
      await this.report('delete', id, startedAt);
      await this.rest(began);
      if (n < DELETE_BATCH) return;
      if (!(await this.claim())) throw new LostLease();
    }
  }

  // ---- run dirs ---------------------------------------------------------------------------------

  private async removeRunDirs(runDirsMs: number): Promise<void> {
    const { db } = this.ctx.store;
    const done = new Set<string>();
    for (;;) {
      if (this.stopped) return;
      const cutoff = await this.cutoff(runDirsMs);
      const rows = (
        await selectRunDirCandidates(db, this.ctx.instanceId, cutoff, CANDIDATES + done.size)
      ).filter((r) => !done.has(r.id));
      if (rows.length === 0) return;
      for (const r of rows) {
        if (this.stopped) return;
        done.add(r.id);
        await this.removeRunDir(r.id, r.run_dir);
      }
    }
  }

  private async removeRunDir(id: string, dir: string): Promise<void> {
    const { db } = this.ctx.store;
    const began = performance.now();
    const startedAt = began + performance.timeOrigin;
    // Only a dir under our data dir is ours to remove.
    const rel = path.relative(this.ctx.config.dataDir, path.resolve(dir));
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return;
    const row = await selectAttemptById(db, id);
    if (!row || row.run_dir !== dir) return;
    const log = await selectAttemptLog(db, id);
    const files = runDirPaths(dir);
    if (log.cap_stdout !== null) {
      // Past the cap the raw files are the log: copied to the archive before they go.
      if (!(await selectArchiveInfo(db, id))?.rest) {
        const [out, err] = await Promise.all([
          compress(readFrom(files.stdout, log.cap_stdout)),
          compress(readFrom(files.stderr, log.cap_stderr ?? 0)),
        ]);
        await db.transaction().execute((trx) => saveRest(trx, id, nowIso(), out, err));
        await this.report('rest', id, startedAt);
      }
    } else if (
      Number(row.stdout_offset) < size(files.stdout) ||
      Number(row.stderr_offset) < size(files.stderr) ||
      Number(row.events_offset) < size(files.events)
    ) {
      // Output not all read into events (it would be read if the attempt were settled again): kept.
      return;
    }
    await fs.promises.rm(dir, { recursive: true, force: true });
    await clearRunDir(db, id);
    await this.report('run_dir', id, startedAt);
    await this.rest(began);
  }
}
