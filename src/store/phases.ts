// The one read phases need: an attempt's runner events, in seq order (by the events_attempt_seq index).
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

export async function selectRunnerEvents(
  db: Kysely<Database>,
  attemptId: string,
): Promise<{ seq: number; at: string; data: Record<string, unknown> }[]> {
  const rows = await db
    .selectFrom('events')
    .select(['seq', 'at', 'data'])
    .where('attempt_id', '=', attemptId)
    .where('type', '=', 'runner_event')
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({
    seq: Number(r.seq),
    at: r.at,
    data: JSON.parse(r.data) as Record<string, unknown>,
  }));
}
