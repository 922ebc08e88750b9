import { sql, type Kysely } from 'kysely';

// Drift (SPEC §14.2). A ready deployment may be found drifted by a check: since when and which
// verdict (null when not drifted). Scheduled checks keep their due time in the row (the database's
// clock judges it, as for retries) and the claim of the check running now: the instance, its lease
// epoch and until when (a claimer that died leaves a claim that expires), so the verdict is recorded only by the claimer still holding that claim (a fence). A
// self-heal deploy waiting holds its due time too. All null when nothing is scheduled.
export async function up(db: Kysely<unknown>): Promise<void> {
  for (const c of [
    'drift_since',
    'drift_verdict',
    'next_check_at',
    'check_owner',
    'check_until',
    'heal_at',
  ]) {
    await db.schema.alterTable('deployments').addColumn(c, 'text').execute();
  }
  await db.schema.alterTable('deployments').addColumn('check_epoch', 'integer').execute();
  await db.schema.alterTable('deployments').addColumn('check_version', 'integer').execute();
  // The scheduler asks for ready deployments whose check is due, earliest first: one index range.
  await db.schema
    .createIndex('deployments_next_check')
    .on('deployments')
    .columns(['state', 'next_check_at'])
    .where(sql.ref('next_check_at'), 'is not', null)
    .execute();
  // Ready deployments not yet given a slot, by plan: the seed pass reads only these.
  await db.schema
    .createIndex('deployments_check_unslotted')
    .on('deployments')
    .columns(['plan', 'state'])
    .where(sql.ref('next_check_at'), 'is', null)
    .execute();
  await db.schema
    .createIndex('deployments_heal_at')
    .on('deployments')
    .column('heal_at')
    .where(sql.ref('heal_at'), 'is not', null)
    .execute();
  // Drifted deployments (metrics, the list filter): few, so a small partial index.
  await db.schema
    .createIndex('deployments_drifted')
    .on('deployments')
    .column('plan')
    .where(sql.ref('drift_since'), 'is not', null)
    .execute();
}
