// The writes an attempt goes through after acceptance: started, output ingested, ended.
// Each is one transaction that re-reads its rows and asks the domain module what is allowed.
import fs from 'node:fs';
import { findPlan } from '../config/load.ts';
import { decideRetry, type RetryDecision, type RetryPolicy } from '../domain/retry.ts';
import { decideOutcome, decideStarted, type Outcome, type Refusal } from '../domain/transitions.ts';
import type { AttemptKind, AttemptState, DeploymentState, LifelineEvent, NewEvent } from '../domain/types.ts';
import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.ts';
import { advanceCursors, selectAttemptById } from '../store/attempts.ts';
import { selectDeploymentById } from '../store/deployments.ts';
import { insertEvents } from '../store/events.ts';
import { dialectOf, selectDbNow } from '../store/instances.ts';
import type { AttemptLogsTable, AttemptsTable } from '../store/schema.ts';
import { applyMark, applyTransition, LostRace, type Fence, type HeldEvents } from '../store/transition.ts';
import { decideTimeoutReached, MARKABLE } from '../domain/marks.ts';
import { groupMembers, type ProcessIdentity } from '../runner/identity.ts';
import { cutLine, makeRedactor, redactDeep } from '../runner/redact.ts';
import { readExit, readProcess, runDirPaths } from '../runner/rundir.ts';
import { LINE_CUT, readLines, readRunnerEvents } from '../runner/tail.ts';
import { saveAttemptLog, saveAttemptOutputs, selectAttemptLog } from '../store/logs.ts';
import { notifyGate, releaseGatesOf } from '../store/gates.ts';
import { secretValues, type Ctx } from './context.ts';
import { clockNow, nowIso } from './ids.ts';
import { outputsWrite, startOutputs, takeOutput } from './outputs.ts';
import { outputsAfterEnd, parseOutputs } from '../domain/outputs.ts';
import { transact } from './tx.ts';
import { mayAct } from './watch/may-act.ts';

/**
 * This instance holds its lease and the attempt is still its own under the current epoch. An owner
 * acts on (and writes about) an attempt only then; its writes also carry the fence in their CAS.
 */
export function ownedHere(ctx: Ctx, row: AttemptsTable): boolean {
  return row.owner === ctx.instanceId && Number(row.owner_epoch ?? 0) === ctx.lease.epoch && mayAct(ctx);
}

/**
 * The owner marks its attempt timed out (`timed_out_at`, `timeout_reached`), fenced by its lease: a
 * lapsed or replaced owner writes nothing. `nowMs` is the watcher's clock, the one its deadline timers
 * run on. Returns whether the mark was written (false: not due, marked already, or not ours).
 */
export async function markTimedOut(ctx: Ctx, attemptId: string, nowMs: number): Promise<boolean> {
  if (!mayAct(ctx)) return false;
  return transact(ctx.store, ctx.bus, async (trx) => {
    const row = await selectAttemptById(trx, attemptId);
    const due =
      row !== undefined &&
      decideTimeoutReached(
        {
          state: row.state as AttemptState,
          startedAt: row.started_at,
          timeoutMs: Number(row.timeout_ms),
          timedOut: row.timed_out_at !== null,
        },
        nowMs,
      );
    if (!row || !due) return { result: false, events: [] };
    const events = await applyMark(trx, {
      at: nowIso(),
      attemptId: row.id,
      deploymentId: row.deployment_id,
      mark: 'timed_out_at',
      states: MARKABLE.timed_out_at,
      fence: ctx.lease.fence(),
      event: { type: 'timeout_reached', data: { timeout_ms: Number(row.timeout_ms), actor: 'runner' } },
    });
    return { result: events !== null, events: events ?? [] };
  });
}

/**
 * A cancel request on an active attempt (`cancel_requested_at`, `cancel_requested`), inside the cancel
 * command's transaction; fenced on the owner and epoch it read, so a claim in between makes it re-read.
 */
export async function writeCancelRequest(
  trx: Transaction<Database>,
  row: AttemptsTable,
  actor: string,
  at: string,
): Promise<LifelineEvent[]> {
  const events = await applyMark(trx, {
    at,
    attemptId: row.id,
    deploymentId: row.deployment_id,
    mark: 'cancel_requested_at',
    states: MARKABLE.cancel_requested_at,
    fence: { owner: row.owner, epoch: Number(row.owner_epoch ?? 0) },
    event: { type: 'cancel_requested', data: { actor } },
  });
  if (!events) throw new LostRace(`cancel request of ${row.id}`);
  return events;
}

/**
 * queued → running with the plan's identity. Returns the attempt as it stands after the transaction
 * (null: no such attempt): the row read in it, with this write's changes when it made them, so the
 * caller need not read it again. `plan`: the deployment's plan when the caller knows it (else read).
 */
export async function recordStarted(
  ctx: Ctx,
  attemptId: string,
  proc: ProcessIdentity,
  startedAt: string,
  plan?: string,
): Promise<AttemptsTable | null> {
  return transact(ctx.store, ctx.bus, (trx) => writeStarted(ctx, trx, attemptId, proc, startedAt, plan));
}

/**
 * The start inside the caller's transaction: the row as written (its version from the compare-and-set)
 * and its events, or the row as found (and no events) when it is not this owner's to start. With
 * `hold`, the events are kept there for a later write of the transaction to append (none come back).
 */
export async function writeStarted(
  ctx: Ctx,
  trx: Transaction<Database>,
  attemptId: string,
  proc: ProcessIdentity,
  startedAt: string,
  plan?: string,
  hold?: HeldEvents,
): Promise<{ result: AttemptsTable | null; events: LifelineEvent[] }> {
  const row = await selectAttemptById(trx, attemptId);
  if (!row || !ownedHere(ctx, row)) return { result: row ?? null, events: [] };
  const decision = decideStarted(row.state as AttemptState);
  if (!decision.ok) return { result: row, events: [] };
  const change = decision.writes.attempt!;
  const set = { started_at: startedAt, pid: proc.pid, process_start: proc.start, boot_id: proc.boot };
  let written: AttemptsTable | undefined;
  const events = await applyTransition(trx, {
    at: nowIso(),
    actor: 'runner',
    deployment: { id: row.deployment_id },
    attempt: { id: row.id, change, set, fence: ctx.lease.fence(), onWritten: (r) => (written = r) },
    eventsAfter: [
      {
        type: 'attempt_start',
        deployment_id: row.deployment_id,
        attempt_id: row.id,
        data: {
          number: Number(row.number),
          kind: row.kind,
          plan: plan ?? (await planName(trx, row)),
          pid: proc.pid,
        },
      },
    ],
    holdEventsIn: hold,
  });
  // The row as the compare-and-set wrote it (with anything another writer committed before it).
  return { result: written!, events };
}

async function planName(
  trx: Parameters<typeof selectDeploymentById>[0],
  row: AttemptsTable,
): Promise<string> {
  const dep = await selectDeploymentById(trx, row.deployment_id);
  return dep?.plan ?? '';
}

/**
 * Per transaction, per stream: bounded, so one attempt's flood never holds the store or the loop. On
 * SQLite a transaction is one synchronous slice of the event loop (better-sqlite3), so it is kept
 * smaller there: its inserts, commit and masking stay a few milliseconds on an idle core.
 */
const TX_LIMITS = {
  postgres: {
    stdout: { maxLines: 400, maxBytes: 96 * 1024 },
    stderr: { maxLines: 400, maxBytes: 96 * 1024 },
    events: { maxLines: 200, maxBytes: 64 * 1024 },
  },
  sqlite: {
    stdout: { maxLines: 200, maxBytes: 80 * 1024 },
    stderr: { maxLines: 200, maxBytes: 80 * 1024 },
    events: { maxLines: 100, maxBytes: 64 * 1024 },
  },
};

/** Default cap on what becomes log_line events per attempt; the raw files keep everything. */
export const DEFAULT_LOG_LIMIT = { lines: 100_000, bytes: 50 * 1024 * 1024, events: 100_000 };

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

type Cursors = Pick<AttemptsTable, 'stdout_offset' | 'stderr_offset' | 'events_offset'>;

/** What a read of the output files started from: the cursors and the ingestion state beside them. */
interface ReadBasis {
  from: { stdout_offset: number; stderr_offset: number; events_offset: number };
  skips: [number, number, number];
  capped: boolean;
  eventsCapped: boolean;
}

function basisOf(row: AttemptsTable, log: AttemptLogsTable): ReadBasis {
  return {
    from: {
      stdout_offset: Number(row.stdout_offset),
      stderr_offset: Number(row.stderr_offset),
      events_offset: Number(row.events_offset),
    },
    skips: [log.stdout_skip, log.stderr_skip, log.events_skip],
    capped: log.cap_stdout !== null,
    eventsCapped: log.events_capped === 1,
  };
}

const sameBasis = (a: ReadBasis, b: ReadBasis) =>
  a.capped === b.capped &&
  a.eventsCapped === b.eventsCapped &&
  a.skips.every((x, i) => x === b.skips[i]) &&
  a.from.stdout_offset === b.from.stdout_offset &&
  a.from.stderr_offset === b.from.stderr_offset &&
  a.from.events_offset === b.from.events_offset;

/** The ingestion is this caller's to do: an active attempt only by its owner, an ended one by anyone. */
function mayIngest(ctx: Ctx, row: AttemptsTable): boolean {
  const active = row.state === 'queued' || row.state === 'running';
  return !active || ownedHere(ctx, row);
}

/**
 * Turns new output into log_line and runner_event events, moving the byte cursors in the same
 * transaction: after a crash the cursors say exactly what was already turned into events. One
 * call is one bounded transaction. Returns true when there may be more to read right away.
 *
 * The files are read before the transaction, from the committed cursors, and the transaction only
 * writes if the cursors and the ingestion state are still those (else the caller reads again): the
 * store (on SQLite its one connection) is never held across file I/O, and on SQLite the whole
 * transaction runs as one short synchronous step.
 */
export async function ingestOutput(ctx: Ctx, attemptId: string, final: boolean): Promise<boolean> {
  const seen = await selectAttemptById(ctx.store.db, attemptId);
  // While the attempt is active only its owner turns output into events; once it has ended (or is
  // unknown) whoever settles it drains the rest. The cursors' CAS keeps it exactly-once either way.
  if (!seen?.run_dir || !mayIngest(ctx, seen)) return false;
  const basis = basisOf(seen, await selectAttemptLog(ctx.store.db, seen.id));
  const { from } = basis;
  const files = runDirPaths(seen.run_dir);
  const lims = TX_LIMITS[ctx.store.dialect];
  const read = async (
    file: string,
    offset: number,
    skip: number,
    lim: { maxLines: number; maxBytes: number },
  ) =>
    basis.capped
      ? // Past the cap the raw file is the log: nothing to read, only the cursor to move.
        { lines: [], ends: [], offset: Math.max(offset, fileSize(file)), more: false, skipping: false }
      : readLines(file, offset, { final, skipping: skip === 1, ...lim });
  const out = await read(files.stdout, from.stdout_offset, basis.skips[0], lims.stdout);
  const err = await read(files.stderr, from.stderr_offset, basis.skips[1], lims.stderr);
  const rev = basis.eventsCapped
    ? // Past the runner_event cap the raw file keeps them: only the cursor moves.
      {
        events: [],
        offset: Math.max(from.events_offset, fileSize(files.events)),
        more: false,
        skipping: false,
      }
    : await readRunnerEvents(files.events, from.events_offset, {
        final,
        skipping: basis.skips[2] === 1,
        ...lims.events,
      });
  const to = { stdout_offset: out.offset, stderr_offset: err.offset, events_offset: rev.offset };
  if (
    to.stdout_offset === from.stdout_offset &&
    to.stderr_offset === from.stderr_offset &&
    to.events_offset === from.events_offset
  ) {
    return false;
  }
  return transact(ctx.store, ctx.bus, async (trx) => {
    const row = await selectAttemptById(trx, attemptId);
    if (!row?.run_dir || !mayIngest(ctx, row)) return { result: false, events: [] };
    const active = row.state === 'queued' || row.state === 'running';
    const log = await selectAttemptLog(trx, row.id);
    // Someone else ingested (or skipped) since the files were read: read again from the new cursors.
    if (!sameBasis(basis, basisOf(row, log))) return { result: true, events: [] };
    const limit = ctx.config.logLimit ?? DEFAULT_LOG_LIMIT;
    const dep = await selectDeploymentById(trx, row.deployment_id);
    const redact = makeRedactor(
      secretValues(
        dep ? findPlan(ctx.config, dep.plan) : undefined,
        JSON.parse(row.params),
        row.secret_params ?? dep?.secret_params,
      ),
    );
    const base = { deployment_id: row.deployment_id, attempt_id: row.id };
    const events: NewEvent[] = [];
    const offsets: (number | null)[] = [];
    const take = (stream: 'stdout' | 'stderr', r: typeof out, start: number) => {
      for (let i = 0; i < r.lines.length && log.cap_stdout === null; i++) {
        const text = cutLine(redact(r.lines[i]), LINE_CUT);
        const bytes = Buffer.byteLength(text) + 1;
        if (log.lines + 1 > limit.lines || log.bytes + bytes > limit.bytes) {
          // The cap: this line and everything after it stay in the raw files only.
          const lineStart = i === 0 ? start : r.ends[i - 1];
          log.cap_stdout = stream === 'stdout' ? lineStart : to.stdout_offset;
          log.cap_stderr = stream === 'stderr' ? lineStart : from.stderr_offset;
          events.push({
            ...base,
            type: 'runner_event',
            data: {
              lifeline: 'log_capped',
              lines: log.lines,
              bytes: log.bytes,
              detail: `output beyond ${limit.lines} lines or ${limit.bytes} bytes is not stored as log_line events; GET /v1/attempts/${row.id}/log serves it from the run dir`,
            },
          });
          offsets.push(null);
          return;
        }
        events.push({ ...base, type: 'log_line', data: { stream, text } });
        offsets.push(log.bytes);
        log.lines += 1;
        log.bytes += bytes;
      }
    };
    take('stdout', out, from.stdout_offset);
    take('stderr', err, from.stderr_offset);
    // Published outputs are taken from the masked event, so a secret never reaches them either.
    const published = startOutputs(row.outputs);
    for (const e of rev.events) {
      const data = redactDeep(e, redact) as Record<string, unknown>;
      const bytes = Buffer.byteLength(JSON.stringify(data));
      if (log.event_count + 1 > limit.events || log.event_bytes + bytes > limit.bytes) {
        // Their own cap (events; bytes as for lines, counted apart): this event and every later one
        // stay in the events file only.
        log.events_capped = 1;
        events.push({
          ...base,
          type: 'runner_event',
          data: {
            lifeline: 'runner_events_capped',
            events: log.event_count,
            bytes: log.event_bytes,
            detail: `runner events beyond ${limit.events} events or ${limit.bytes} bytes are not stored as runner_event events; they stay in the run dir's events file`,
          },
        });
        offsets.push(null);
        break;
      }
      events.push({ ...base, type: 'runner_event', data });
      offsets.push(null);
      log.event_count += 1;
      log.event_bytes += bytes;
      const refused = takeOutput(published, data);
      if (refused) {
        events.push({ ...base, type: 'runner_event', data: refused });
        offsets.push(null);
      }
    }
    log.stdout_skip = out.skipping ? 1 : 0;
    log.stderr_skip = err.skipping ? 1 : 0;
    log.events_skip = rev.skipping ? 1 : 0;
    if (!(await advanceCursors(trx, row.id, from as Cursors, to, active ? ctx.lease.fence() : undefined)))
      throw new LostRace(`output cursors of ${row.id}`);
    await saveAttemptLog(trx, log);
    if (published.changed) await saveAttemptOutputs(trx, row.id, JSON.stringify(published.outputs));
    const appended = await insertEvents(trx, events, nowIso(), offsets);
    return { result: out.more || err.more || rev.more, events: appended };
  });
}

/**
 * Output that cannot be ingested (ingestOutput keeps failing on it): the cursors move to the ends of
 * the files and one runner_event says what was skipped and why, so the attempt can still end. The
 * raw files keep the output; `GET …/log` past the stored lines does not serve it (it is not capped).
 */
export async function skipOutput(ctx: Ctx, attemptId: string, error: string): Promise<void> {
  await transact(ctx.store, ctx.bus, async (trx) => {
    const row = await selectAttemptById(trx, attemptId);
    if (!row?.run_dir) return { result: undefined, events: [] };
    const files = runDirPaths(row.run_dir);
    const from = {
      stdout_offset: Number(row.stdout_offset),
      stderr_offset: Number(row.stderr_offset),
      events_offset: Number(row.events_offset),
    };
    const to = {
      stdout_offset: Math.max(from.stdout_offset, fileSize(files.stdout)),
      stderr_offset: Math.max(from.stderr_offset, fileSize(files.stderr)),
      events_offset: Math.max(from.events_offset, fileSize(files.events)),
    };
    if (!(await advanceCursors(trx, row.id, from, to))) throw new LostRace(`output cursors of ${row.id}`);
    const log = await selectAttemptLog(trx, row.id);
    log.stdout_skip = 0;
    log.stderr_skip = 0;
    log.events_skip = 0;
    await saveAttemptLog(trx, log);
    const skipped = {
      stdout: to.stdout_offset - from.stdout_offset,
      stderr: to.stderr_offset - from.stderr_offset,
      events: to.events_offset - from.events_offset,
    };
    const event: NewEvent = {
      deployment_id: row.deployment_id,
      attempt_id: row.id,
      type: 'runner_event',
      data: { lifeline: 'output_skipped', bytes: skipped, error: cutLine(error, 512) },
    };
    return { result: undefined, events: await insertEvents(trx, [event], nowIso(), [null]) };
  });
}

/** Ingests everything left, yielding to the event loop between transactions. */
export async function drainOutput(ctx: Ctx, attemptId: string): Promise<void> {
  while (await ingestOutput(ctx, attemptId, true)) await new Promise((r) => setImmediate(r));
}

export interface EndDetails {
  rc: number | null;
  recovered: boolean;
  actor: string;
  endedAt?: string;
  cancelRequestedAt?: string;
  /** Why it ended when no exit code says it: kept on the attempt and told in its log (stderr). */
  detail?: string;
  /** The owner and lease epoch the attempt must still have; the owner's own ends (actor `runner`) get theirs. */
  fence?: Fence;
  /** The verifying check's result (SPEC §9.3): its lines (already masked) and verdict go in the log. */
  check?: { rc: number | null; verdict: string; lines: string[] };
  /** The retry policy of a plan (SPEC §9.1), by name; without it a failed deploy schedules nothing. */
  retryPolicy?: (plan: string) => RetryPolicy | null;
  /** Whether a gate must still hold it (1) or not (0), as the caller decided on (SPEC §13): else a LostRace. */
  expectWaiting?: 0 | 1;
}

export type EndResult =
  | { ok: true; events: LifelineEvent[]; clamped?: { given: string; to: string } }
  | { ok: false; refusal: Refusal };

const fenced = (attemptId: string): Refusal => ({
  code: 'INVALID_TRANSITION',
  detail: `attempt ${attemptId} is no longer this owner's under its lease (lapsed or taken over)`,
});

/** Ends an attempt (or settles a lost one late). Refusals come back, not thrown: the caller lost a race. */
export async function endAttempt(
  ctx: Ctx,
  attemptId: string,
  outcome: Outcome,
  details: EndDetails,
): Promise<EndResult> {
  if (details.actor === 'runner' && !mayAct(ctx)) return { ok: false, refusal: fenced(attemptId) };
  const full = endDetails(ctx, details);
  return transact(ctx.store, ctx.bus, async (trx) => {
    const result = await writeEnd(trx, attemptId, outcome, full);
    return { result, events: result.ok ? result.events : [] };
  }).then((result) => {
    warnClamped(ctx, attemptId, result);
    return result;
  });
}

/** What every end needs besides the caller's details: the owner's fence, the plan's retry policy. */
export function endDetails(ctx: Ctx, details: EndDetails): EndDetails {
  if (details.actor === 'runner') details = { ...details, fence: details.fence ?? ctx.lease.fence() };
  if (!details.retryPolicy)
    details = { ...details, retryPolicy: (plan) => findPlan(ctx.config, plan)?.retry ?? null };
  return details;
}

export function warnClamped(ctx: Ctx, attemptId: string, result: EndResult): void {
  if (result.ok && result.clamped) {
    ctx.log.warn(
      { attempt_id: attemptId, exit_at: result.clamped.given, ended_at: result.clamped.to },
      'the exit record is dated before the attempt started (clock stepped back?); ended_at set to started_at',
    );
  }
}

/** An end time never before the start: a clock stepped back must not make a negative duration. */
function clampEnd(endedAt: string, startedAt: string | null): string {
  if (startedAt === null) return endedAt;
  return Date.parse(endedAt) < Date.parse(startedAt) ? startedAt : endedAt;
}

/**
 * When a retry is due (SPEC §9.1: `delay` after the end), on the database's clock, which is the one
 * every instance judges it by. The end's age is measured on this instance's clock, the one that dated
 * it, so no two machines' clocks are compared: a skewed instance schedules neither early nor late.
 */
async function retryDueAt(trx: Transaction<Database>, endedAt: string, delayMs: number): Promise<string> {
  // The age first, then the database's clock: on one machine (one clock) the due time then never lands
  // before the failure + the delay; it may land later by the read's latency (a retry starts late, never
  // early). The other order let a short delay put it before the failure itself (seen: 8 and 64 ms).
  const age = Math.max(0, clockNow() - Date.parse(endedAt));
  const dbNow = await selectDbNow(trx, dialectOf(trx));
  return new Date(dbNow + delayMs - age).toISOString();
}

/**
 * The end of an attempt inside the caller's transaction: attempt, deployment if current, attempt_end.
 * `written`: the row as this transaction last wrote it (its start), so it is not read again; `held`:
 * that write's events, appended first with the end's (a refused end leaves them to the caller).
 */
export async function writeEnd(
  trx: Transaction<Database>,
  attemptId: string,
  outcome: Outcome,
  details: EndDetails,
  written?: AttemptsTable,
  held?: HeldEvents,
): Promise<EndResult> {
  const row = written ?? (await selectAttemptById(trx, attemptId));
  const dep = row && (await selectDeploymentById(trx, row.deployment_id));
  if (!row || !dep)
    return { ok: false, refusal: { code: 'NOT_FOUND', detail: `attempt ${attemptId} not found` } };
  const fence = details.fence;
  if (fence && (row.owner !== fence.owner || Number(row.owner_epoch ?? 0) !== fence.epoch))
    return { ok: false, refusal: fenced(attemptId) };
  const decision = decideOutcome(
    {
      state: row.state as AttemptState,
      kind: row.kind as AttemptKind,
      prevState: row.prev_state as DeploymentState,
      isCurrent: dep.current_attempt_id === row.id && dep.deleted_at === null,
    },
    dep.state as DeploymentState,
    outcome,
  );
  if (!decision.ok) return decision;
  const waiting = Number(row.waiting ?? 0) as 0 | 1;
  if (details.expectWaiting !== undefined && waiting !== details.expectWaiting)
    throw new LostRace(`gates of ${row.id}`);
  const at = nowIso();
  const change = decision.writes.attempt!;
  // SPEC §13: an end frees the attempt's concurrency slot (an unknown one keeps it until it is settled
  // or resolved: its process may still run), and its waiting record goes (its events keep the history).
  const releasedSlot = await releaseGates(trx, row.id, change.to === 'unknown');
  const recovered = details.recovered || Boolean(row.recovered);
  // The plan never ran, so nothing else will say why in `lifeline logs`: one line of our own, appended
  // to the attempt's log text like any other.
  const told = details.detail ? cutLine(`lifeline: ${details.detail}`) : null;
  let toldAt = 0;
  if (told !== null) {
    const log = await selectAttemptLog(trx, row.id);
    toldAt = log.bytes;
    log.lines += 1;
    log.bytes += Buffer.byteLength(told) + 1;
    await saveAttemptLog(trx, log);
  }
  // A verifying check's output: log_line events with stream "check", then its check_result.
  const checkEvents: (NewEvent & { logOffset?: number })[] = [];
  if (details.check) {
    const log = await selectAttemptLog(trx, row.id);
    for (const line of details.check.lines) {
      const text = cutLine(line);
      checkEvents.push({
        type: 'log_line',
        deployment_id: dep.id,
        attempt_id: row.id,
        data: { stream: 'check', text },
        logOffset: log.bytes,
      });
      log.lines += 1;
      log.bytes += Buffer.byteLength(text) + 1;
    }
    await saveAttemptLog(trx, log);
    checkEvents.push({
      type: 'check_result',
      deployment_id: dep.id,
      attempt_id: row.id,
      data: { rc: details.check.rc, verdict: details.check.verdict, actor: details.actor, verify: row.kind },
    });
  }
  const endedAt = clampEnd(details.endedAt ?? at, row.started_at);
  // A cancel that ends the attempt at once is requested in the same write, with its own event.
  const cancelNow = details.cancelRequestedAt !== undefined && row.cancel_requested_at === null;
  const retry = decideRetry(
    {
      kind: row.kind as AttemptKind,
      state: change.to,
      reason: change.reason,
      retryNumber: row.retry_number == null ? null : Number(row.retry_number),
      deploymentFailed: decision.writes.deployment?.to === 'failed',
    },
    details.retryPolicy?.(dep.plan) ?? null,
    Math.random(),
  );
  const retryAt = retry.kind === 'schedule' ? await retryDueAt(trx, endedAt, retry.delayMs) : null;
  // SPEC §12.1: a succeeded deploy's outputs become the deployment's, a succeeded teardown clears them.
  // (Parsed only then: most ends are not succeeded ones of the current attempt.)
  const moved = decision.writes.deployment !== undefined && change.to === 'succeeded';
  const outputs = moved
    ? outputsWrite(
        dep,
        outputsAfterEnd(row.kind as AttemptKind, change.to, moved, parseOutputs(row.outputs)),
        row.id,
      )
    : { events: [] };
  const events = await applyTransition(trx, {
    at,
    actor: details.actor,
    deployment: {
      id: dep.id,
      expectState: dep.state,
      expectVersion: Number(dep.version),
      change: decision.writes.deployment,
      // The schedule is written with the failure itself: a crash cannot leave one without the other.
      ...(retry.kind === 'schedule' || outputs.set
        ? {
            set: {
              ...(retry.kind === 'schedule'
                ? {
                    retry_number: retry.number,
                    retry_of: retry.of,
                    retry_at: retryAt,
                    retry_attempt_id: row.id,
                  }
                : {}),
              ...outputs.set,
            },
          }
        : {}),
    },
    attempt: {
      id: row.id,
      change,
      set: {
        rc: details.rc,
        ended_at: endedAt,
        recovered: recovered ? 1 : 0,
        ...(details.detail ? { detail: details.detail } : {}),
        ...(cancelNow ? { cancel_requested_at: at } : {}),
        ...(waiting === 1 ? { waiting: 0 } : {}),
      },
      fence,
      ...(details.expectWaiting !== undefined ? { expectWaiting: details.expectWaiting } : {}),
    },
    // What led to the end comes before it: the runner's own line, the check's lines and verdict.
    eventsBefore: [
      ...(cancelNow
        ? [
            {
              type: 'cancel_requested' as const,
              deployment_id: dep.id,
              attempt_id: row.id,
              data: { actor: details.actor },
            },
          ]
        : []),
      ...(told !== null
        ? [
            {
              type: 'log_line' as const,
              deployment_id: dep.id,
              attempt_id: row.id,
              data: { stream: 'stderr', text: told },
              logOffset: toldAt,
            },
          ]
        : []),
      ...checkEvents,
    ],
    eventsAfter: [
      {
        type: 'attempt_end',
        deployment_id: dep.id,
        attempt_id: row.id,
        data: {
          number: Number(row.number),
          kind: row.kind,
          state: change.to,
          reason: change.reason,
          rc: details.rc,
          recovered,
          ...(releasedSlot !== null ? { released_slot: releasedSlot } : {}),
        },
      },
      ...retryEvents(retry, retryAt, dep.id, row.id),
      ...outputs.events,
    ],
    heldEvents: held,
  });
  const given = details.endedAt ?? at;
  return { ok: true, events, ...(endedAt !== given ? { clamped: { given, to: endedAt } } : {}) };
}

/**
 * The gates' part of an end (SPEC §13): the waiting record goes and, unless the attempt stays unknown,
 * its slot is freed and every instance's gate keeper told (Postgres; here the commit's attempt_end says
 * it). Returns the key freed.
 */
async function releaseGates(
  trx: Transaction<Database>,
  attemptId: string,
  keepSlot: boolean,
): Promise<string | null> {
  const key = await releaseGatesOf(trx, attemptId, keepSlot);
  if (key !== null) await notifyGate(trx, key);
  return key;
}

/** A cancel was requested or the timeout reached: its end must find nothing of it alive. */
export const isStopped = (row: AttemptsTable) =>
  row.cancel_requested_at !== null || row.timed_out_at !== null;

/**
 * Live processes of the plan's group or session on this machine (none for a run dir elsewhere: its
 * processes cannot be seen from here).
 */
export function groupLeft(runDir: string): ProcessIdentity[] {
  const proc = readProcess(runDir);
  return proc ? groupMembers(proc) : [];
}

/**
 * An `unknown` attempt whose exit record turned up: correct it (and the deployment while current).
 * Not while a stopped attempt has anything of its group alive here: the watcher supervising it stops
 * that first (watch/signals.ts stopLeftovers), then settles it.
 */
export async function settleLate(ctx: Ctx, row: AttemptsTable): Promise<boolean> {
  if (!row.run_dir) return false;
  const exit = readExit(row.run_dir);
  if (!exit) return false;
  await drainOutput(ctx, row.id);
  // Read after the drain: a cancel or timeout recorded while it ran still wins over the code.
  const fresh = (await selectAttemptById(ctx.store.db, row.id)) ?? row;
  if (isStopped(fresh) && groupLeft(row.run_dir).length > 0) return false;
  await endAttempt(
    ctx,
    row.id,
    {
      kind: 'late_result',
      rc: exit.rc,
      cancelRequested: fresh.cancel_requested_at !== null,
      timedOut: fresh.timed_out_at !== null,
    },
    { rc: exit.rc, recovered: true, actor: 'recovery', endedAt: new Date(exit.at).toISOString() },
  );
  return true;
}

/** `retry_scheduled {number, of, at}` or `retry_exhausted {number, of}`, after the attempt's end. */
function retryEvents(
  retry: RetryDecision,
  at: string | null,
  deploymentId: string,
  attemptId: string,
): NewEvent[] {
  const base = { deployment_id: deploymentId, attempt_id: attemptId };
  if (retry.kind === 'schedule') {
    return [{ ...base, type: 'retry_scheduled', data: { number: retry.number, of: retry.of, at } }];
  }
  if (retry.kind === 'exhausted') {
    return [{ ...base, type: 'retry_exhausted', data: { number: retry.number, of: retry.of } }];
  }
  return [];
}
