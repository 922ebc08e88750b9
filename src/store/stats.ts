// Grouped counts for /metrics: one query per family, computed at scrape time (nothing cached to drift).
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

export interface AttemptCount {
  plan: string;
  kind: string;
  state: string;
  reason: string | null;
  n: number;
}

/** Live (not deleted) deployments by state. */
export async function countDeploymentsByState(db: Kysely<Database>): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('deployments')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('deleted_at', 'is', null)
    .groupBy('state')
    .execute();
  return new Map(rows.map((r) => [r.state, Number(r.n)]));
}

/** Every attempt (deleted deployments' too) by plan, kind, state and reason. */
export async function countAttempts(db: Kysely<Database>): Promise<AttemptCount[]> {
  const rows = await db
    .selectFrom('attempts')
    .innerJoin('deployments', 'deployments.id', 'attempts.deployment_id')
    .select([
      'deployments.plan as plan',
      'attempts.kind as kind',
      'attempts.state as state',
      'attempts.reason as reason',
      (eb) => eb.fn.countAll<number>().as('n'),
    ])
    .groupBy(['deployments.plan', 'attempts.kind', 'attempts.state', 'attempts.reason'])
    .execute();
  return rows.map((r) => ({ ...r, n: Number(r.n) }));
}

/** The last seq handed out (0 before the first event). */
export async function lastSeq(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('counters')
    .select('value')
    .where('name', '=', 'event_seq')
    .executeTakeFirst();
  return row ? Number(row.value) : 0;
}

export interface EndedAttempt {
  seq: number;
  plan: string;
  kind: string;
  owner: string | null;
  started_at: string | null;
  ended_at: string | null;
}

/** `attempt_end` events after `after`, with what a duration histogram needs. */
export async function selectEndedAttempts(
  db: Kysely<Database>,
  after: number,
  limit: number,
): Promise<EndedAttempt[]> {
  return db
    .selectFrom('events')
    .innerJoin('attempts', 'attempts.id', 'events.attempt_id')
    .innerJoin('deployments', 'deployments.id', 'attempts.deployment_id')
    .select([
      'events.seq as seq',
      'deployments.plan as plan',
      'attempts.kind as kind',
      'attempts.owner as owner',
      'attempts.started_at as started_at',
      'attempts.ended_at as ended_at',
    ])
    .where('events.seq', '>', after)
    .where('events.type', '=', 'attempt_end')
    .orderBy('events.seq', 'asc')
    .limit(limit)
    .execute();
}

/** Live (not deleted) stacks by state (SPEC §12.3). */
export async function countStacksByState(db: Kysely<Database>): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('stacks')
    .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
    .where('deleted_at', 'is', null)
    .groupBy('state')
    .execute();
  return new Map(rows.map((r) => [r.state, Number(r.n)]));
}

/** Runs not ended (queued or running) by kind (SPEC §12.4). */
export async function countActiveRunsByKind(db: Kysely<Database>): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('runs')
    .select(['kind', (eb) => eb.fn.countAll<number>().as('n')])
    .where('state', 'in', ['queued', 'running'])
    .groupBy('kind')
    .execute();
  return new Map(rows.map((r) => [r.kind, Number(r.n)]));
}
