// Store-level invariants of SPEC §8 that hold on any consistent snapshot of the database, whatever
// produced it (model test, crash test): §8.1 fold = stored state and version, §8.2 one active attempt
// and busy iff the current attempt is active, §8.3 seq gap-free (after retention, SPEC §11: the only
// missing seqs are archived log_line/runner_event ones, below logs_pruned_before); plus the attempt's own
// transition chain and the attempt_start/attempt_end counts of SPEC §3; and the verifying check's trail
// (§9.3); and §12.1, outputs = fold of outputs_changed.
import { foldMarks } from '../../src/domain/marks.ts';
import { foldOutputs, parseOutputs } from '../../src/domain/outputs.ts';
import { driftOf, foldDrift } from '../../src/domain/drift.ts';
import { gunzipSync } from 'node:zlib';
import SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { expect } from 'vitest';
import { checkVerdict, foldDeployment, verifiedBy } from '../../src/domain/transitions.ts';
import type { AttemptKind } from '../../src/domain/types.ts';
import type { AttemptsTable, Database, DeploymentsTable, EventsTable } from '../../src/store/schema.ts';

export interface StoreSnapshot {
  deployments: DeploymentsTable[];
  attempts: AttemptsTable[];
  /** In seq order. */
  events: EventsTable[];
  /** Seqs of the events retention moved to log_archive (SPEC §11), and of which type. */
  archived?: Map<number, string>;
  /** retention's pruned_before: every archived seq is below it (null: nothing pruned). */
  prunedBefore?: number | null;
}

/** The archived events' seqs and types, from log_archive's gzip JSON. */
function archivedSeqs(blobs: (Buffer | null)[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const b of blobs) {
    if (!b) continue;
    for (const e of JSON.parse(gunzipSync(b).toString('utf8')) as { seq: number; type: string }[])
      m.set(e.seq, e.type);
  }
  return m;
}

export const isBusy = (s: string) => s === 'deploying' || s === 'tearing_down';
export const isActive = (s: string) => s === 'queued' || s === 'running';
export const isFinal = (s: string) => s === 'succeeded' || s === 'failed' || s === 'cancelled';

/** Reads the three tables through an engine's Kysely handle (callers make sure nothing writes meanwhile). */
export async function snapshotOf(db: Kysely<Database>): Promise<StoreSnapshot> {
  return {
    deployments: await db.selectFrom('deployments').selectAll().execute(),
    attempts: await db.selectFrom('attempts').selectAll().execute(),
    events: await db.selectFrom('events').selectAll().orderBy('seq').execute(),
    archived: archivedSeqs(
      (await db.selectFrom('log_archive').select('events').execute()).map((r) => r.events),
    ),
    prunedBefore: await db
      .selectFrom('retention')
      .select('pruned_before')
      .where('name', '=', 'logs')
      .executeTakeFirst()
      .then((r) => (r?.pruned_before == null ? null : Number(r.pruned_before))),
  };
}

/**
 * Reads the three tables of a SQLite file in one read transaction, so the snapshot is consistent
 * even while an engine in another process writes. Opened read-only: this never writes.
 */
export function snapshotOfFile(file: string): StoreSnapshot {
  const db = new SQLite(file, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    const has = (t: string) =>
      db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !== undefined;
    return db.transaction(() => ({
      deployments: db.prepare('SELECT * FROM deployments').all() as DeploymentsTable[],
      attempts: db.prepare('SELECT * FROM attempts').all() as AttemptsTable[],
      events: db.prepare('SELECT * FROM events ORDER BY seq').all() as EventsTable[],
      ...(has('log_archive')
        ? {
            archived: archivedSeqs(
              (db.prepare('SELECT events FROM log_archive').all() as { events: Buffer | null }[]).map(
                (r) => r.events,
              ),
            ),
            prunedBefore:
              (
                db.prepare("SELECT pruned_before FROM retention WHERE name = 'logs'").get() as
                  { pruned_before: number | null } | undefined
              )?.pruned_before ?? null,
          }
        : {}),
    }))();
  } finally {
    db.close();
  }
}

export function eventsByAttempt(s: StoreSnapshot): Map<string, EventsTable[]> {
  const m = new Map<string, EventsTable[]>();
  for (const e of s.events) {
    if (e.attempt_id === null) continue;
    let list = m.get(e.attempt_id);
    if (!list) m.set(e.attempt_id, (list = []));
    list.push(e);
  }
  return m;
}

/** SPEC §8.1, §8.2 and §8.3 over one snapshot. */
export function expectStoreInvariants(s: StoreSnapshot): void {
  // §8.3: seq is 1..N; after retention (§11) the only seqs missing are archived log_line/runner_event
  // events, all below pruned_before.
  const seqs = s.events.map((e) => Number(e.seq));
  const archived = s.archived ?? new Map<number, string>();
  let top = seqs.at(-1) ?? 0;
  for (const seq of archived.keys()) if (seq > top) top = seq;
  const present = new Set(seqs);
  const bad: string[] = [];
  for (let i = 1; i < seqs.length; i++) if (seqs[i] <= seqs[i - 1]) bad.push(`${seqs[i]} out of order`);
  for (let seq = 1; seq <= top && bad.length < 20; seq++) {
    if (present.has(seq)) continue;
    const type = archived.get(seq);
    if (type !== 'log_line' && type !== 'runner_event') bad.push(`seq ${seq} missing and not archived`);
    else if (s.prunedBefore == null || seq >= s.prunedBefore)
      bad.push(`seq ${seq} archived but not below logs_pruned_before ${s.prunedBefore}`);
  }
  expect(bad, 'seqs (SPEC §8.3, §11)').toEqual([]);
  for (const d of s.deployments) {
    // §8.1: folding the transitions gives the stored state and version
    const mine = s.events
      .filter((e) => e.deployment_id === d.id && e.type === 'state_transition')
      .map((e) => ({ type: e.type, data: JSON.parse(e.data) }));
    expect(foldDeployment(mine), `fold of deployment ${d.id}`).toEqual({
      state: d.state,
      version: Number(d.version),
    });
    // SPEC §12.1: the stored outputs are the fold of the deployment's outputs_changed events too.
    const changes = s.events
      .filter((e) => e.deployment_id === d.id && e.type === 'outputs_changed')
      .map((e) => ({ type: e.type, data: JSON.parse(e.data) }));
    expect(foldOutputs(changes), `outputs of deployment ${d.id}`).toEqual(parseOutputs(d.outputs));
    // SPEC §14.2: drift is a fold of the deployment's events too
    const all = s.events
      .filter((e) => e.deployment_id === d.id)
      .map((e) => ({ type: e.type, data: JSON.parse(e.data) as Record<string, unknown> }));
    expect(foldDrift(all), `drift of deployment ${d.id}`).toEqual(driftOf(d.drift_since, d.drift_verdict));
    if (d.drift_since != null) expect(d.state, `drifted deployment ${d.id}`).toBe('ready');
    // §8.2: at most one active attempt, and busy exactly when the current attempt is active
    const act = s.attempts.filter((a) => a.deployment_id === d.id && isActive(a.state));
    expect(act.length, `active attempts of ${d.id}`).toBeLessThanOrEqual(1);
    const cur = s.attempts.find((a) => a.id === d.current_attempt_id);
    expect(isBusy(d.state), `deployment ${d.id} is ${d.state}, current attempt ${cur?.state}`).toBe(
      cur !== undefined && isActive(cur.state),
    );
    if (act.length === 1) expect(act[0].id).toBe(d.current_attempt_id);
  }
}

/**
 * Per attempt: its state_transition events chain (from = previous to) and end in its stored state and
 * version; one attempt_start exactly when it started; one attempt_end once it ended (two when a late
 * result corrected an `unknown`), and the last one says what the row says.
 */
export function expectAttemptHistories(s: StoreSnapshot): void {
  const byAttempt = eventsByAttempt(s);
  for (const a of s.attempts) {
    const evs = byAttempt.get(a.id) ?? [];
    const moves = evs
      .filter((e) => e.type === 'state_transition')
      .map((e) => JSON.parse(e.data))
      .filter((d) => d.entity === 'attempt');
    expect(moves.length, `transitions of attempt ${a.id}`).toBe(Number(a.version));
    moves.forEach((m, i) => {
      expect(m.from, `transition ${i} of attempt ${a.id}`).toBe(i === 0 ? null : moves[i - 1].to);
      expect(m.version).toBe(i + 1);
    });
    expect(moves[moves.length - 1]?.to, `last transition of attempt ${a.id}`).toBe(a.state);

    // The marks (cancel requested, timed out) are a fold of their events too.
    expect(foldMarks(evs), `marks of attempt ${a.id}`).toEqual({
      cancel_requested_at: a.cancel_requested_at,
      timed_out_at: a.timed_out_at,
    });

    const starts = evs.filter((e) => e.type === 'attempt_start');
    expect(starts.length, `attempt_start count of ${a.id}`).toBe(a.started_at === null ? 0 : 1);

    const ends = evs.filter((e) => e.type === 'attempt_end').map((e) => JSON.parse(e.data));
    const wanted = isActive(a.state) ? 0 : a.reason === 'late_result' ? 2 : 1;
    expect(ends.length, `attempt_end count of ${a.id} (${a.state}/${a.reason})`).toBe(wanted);
    if (wanted === 2) expect(ends[0].state, `first end of late result ${a.id}`).toBe('unknown');
    if (wanted > 0) {
      const last = ends[ends.length - 1];
      expect({ state: last.state, reason: last.reason, rc: last.rc }, `attempt_end of ${a.id}`).toEqual({
        state: a.state,
        reason: a.reason,
        rc: a.rc === null ? null : Number(a.rc),
      });
    }
  }
}

/**
 * SPEC §9.3 over one snapshot, whatever the plans: a verifying check leaves at most one check_result
 * per attempt, written in the attempt's ending transaction: its `check` log lines, then the
 * check_result, then only that end's state transitions, then the first attempt_end, in consecutive seqs. That end has rc 0 and is `succeeded`
 * exactly when the verdict is the one the kind needs, else `failed`/`unverified`; an `unverified` end
 * never comes without such a check_result, and `check` log lines never without one.
 */
export function expectCheckHistories(s: StoreSnapshot): void {
  const byAttempt = eventsByAttempt(s);
  for (const a of s.attempts) {
    const evs = byAttempt.get(a.id) ?? [];
    const ctx = (what: string) => `${what} of attempt ${a.id} (${a.kind} ${a.state}/${a.reason})`;
    const results = evs.filter((e) => e.type === 'check_result');
    const lines = evs.filter((e) => e.type === 'log_line' && JSON.parse(e.data).stream === 'check');
    const ends = evs.filter((e) => e.type === 'attempt_end');
    const firstEnd = ends[0] ? JSON.parse(ends[0].data) : null;
    expect(results.length, ctx('check_result count')).toBeLessThanOrEqual(1);
    if (results.length === 0) {
      expect(lines.length, ctx('check log lines without a check_result')).toBe(0);
      expect(firstEnd?.reason, ctx('unverified end without a check_result')).not.toBe('unverified');
      continue;
    }
    const res = results[0];
    const data = JSON.parse(res.data) as { rc: number | null; verdict: string };
    expect(data.verdict, ctx('verdict of the check_result')).toBe(checkVerdict(data.rc));
    expect(ends.length, ctx('attempt_end after a check_result')).toBeGreaterThan(0);
    // What decided the end comes first, then the end's own transitions, then attempt_end (af3691c).
    const seqs = [...lines, res].map((e) => Number(e.seq));
    const from = seqs[0];
    expect(seqs, ctx('check lines and check_result in one run')).toEqual(seqs.map((_, i) => from + i));
    const between = s.events
      .filter((e) => Number(e.seq) > Number(res.seq) && Number(e.seq) < Number(ends[0].seq))
      .map((e) => [e.type, e.deployment_id]);
    expect(between.length, ctx('transitions between check_result and attempt_end')).toBeGreaterThan(0);
    expect(between, ctx("only the end's transitions between check_result and attempt_end")).toEqual(
      between.map(() => ['state_transition', a.deployment_id]),
    );
    const ok = verifiedBy(a.kind as AttemptKind, data.verdict as ReturnType<typeof checkVerdict>);
    expect(
      { state: firstEnd.state, reason: firstEnd.reason, rc: firstEnd.rc },
      ctx('end after the verifying check'),
    ).toEqual(
      ok ? { state: 'succeeded', reason: null, rc: 0 } : { state: 'failed', reason: 'unverified', rc: 0 },
    );
  }
}

/**
 * SPEC §9.1 over one snapshot, whatever the plans: a retry_scheduled is written in its failure's
 * transaction (right after that attempt_end) on a failed exit_nonzero/timeout deploy, with the number
 * after the failed attempt's own; every retry attempt (retry_number set, started by `retry`) follows
 * exactly one retry_scheduled of that number on the attempt just before it; and each schedule is
 * used at most once: started, cancelled, or still waiting, never two of these (so never started twice).
 * A waiting retry sits on its deployment's current attempt, a failed deploy, while the deployment is
 * `failed` and not deleted.
 */
export function expectRetryHistories(s: StoreSnapshot): void {
  const byAttempt = eventsByAttempt(s);
  const ofType = (id: string, type: string) => (byAttempt.get(id) ?? []).filter((e) => e.type === type);
  const attemptAt = (deploymentId: string, n: number) =>
    s.attempts.find((x) => x.deployment_id === deploymentId && Number(x.number) === n);
  for (const a of s.attempts) {
    const ctx = (what: string) => `${what} of attempt ${a.id} (${a.kind} ${a.state}/${a.reason})`;
    const scheduled = ofType(a.id, 'retry_scheduled');
    expect(scheduled.length, ctx('retry_scheduled count')).toBeLessThanOrEqual(1);
    if (scheduled.length === 1) {
      const data = JSON.parse(scheduled[0].data) as { number: number; of: number };
      expect([a.kind, a.state], ctx('kind and state of a retried attempt')).toEqual(['deploy', 'failed']);
      expect(['exit_nonzero', 'timeout'], ctx('reason of a retried attempt')).toContain(a.reason);
      expect(data.number, ctx('number of the retry scheduled')).toBe(Number(a.retry_number ?? 0) + 1);
      expect(data.number, ctx('retry number within max')).toBeLessThanOrEqual(data.of);
      const end = ofType(a.id, 'attempt_end')[0];
      expect(Number(scheduled[0].seq), ctx('retry_scheduled right after the failure')).toBe(
        Number(end?.seq) + 1,
      );
      const next = attemptAt(a.deployment_id, Number(a.number) + 1);
      const started = next?.retry_number != null ? 1 : 0;
      const cancelled = ofType(a.id, 'retry_cancelled').length;
      const waiting = s.deployments.some((d) => d.retry_attempt_id === a.id) ? 1 : 0;
      expect(started + cancelled + waiting, ctx('uses of its retry schedule')).toBeLessThanOrEqual(1);
    } else {
      expect(ofType(a.id, 'retry_cancelled').length, ctx('retry_cancelled without a schedule')).toBe(0);
    }
    if (a.retry_number == null) continue;
    expect(a.requested_by, ctx('actor of a retry')).toBe('retry');
    expect(a.kind, ctx('kind of a retry')).toBe('deploy');
    const before = attemptAt(a.deployment_id, Number(a.number) - 1);
    const schedule = before ? ofType(before.id, 'retry_scheduled').map((e) => JSON.parse(e.data).number) : [];
    expect(schedule, ctx('the schedule this retry started from')).toEqual([Number(a.retry_number)]);
  }
  for (const d of s.deployments) {
    if (d.retry_attempt_id == null) continue;
    expect(d.deleted_at, `deleted deployment ${d.id} with a retry waiting`).toBeNull();
    expect(d.state, `deployment ${d.id} with a retry waiting`).toBe('failed');
    expect(d.current_attempt_id, `deployment ${d.id}: its retry waits on the current attempt`).toBe(
      d.retry_attempt_id,
    );
    expect(ofType(d.retry_attempt_id, 'retry_scheduled').length, `schedule of ${d.id}'s retry`).toBe(1);
  }
}
