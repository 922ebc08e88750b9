import { type Kysely, sql } from 'kysely';

// Logs read by range (issue 8): each stored log line carries its start offset in the attempt's
// log text (lines joined with "\n"), so a range read is an index seek, not a scan of the log.
// attempt_logs holds what ingestion must remember between its bounded transactions.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('events').addColumn('log_offset', 'bigint').execute();
  await db.schema
    .createIndex('events_attempt_log_offset')
    .on('events')
    .columns(['attempt_id', 'log_offset'])
    .execute();
  await db.schema
    .createTable('attempt_logs')
    .addColumn('attempt_id', 'text', (c) => c.primaryKey().references('attempts.id'))
    // log_line events stored so far and the bytes of their text (each line + "\n")
    .addColumn('lines', 'bigint', (c) => c.notNull())
    .addColumn('bytes', 'bigint', (c) => c.notNull())
    // 1 while a stream's cursor sits inside an over-long line whose cut start is stored
    .addColumn('stdout_skip', 'integer', (c) => c.notNull())
    .addColumn('stderr_skip', 'integer', (c) => c.notNull())
    .addColumn('events_skip', 'integer', (c) => c.notNull())
    // where the log_line cap was reached in each raw file (null: not capped)
    .addColumn('cap_stdout', 'bigint')
    .addColumn('cap_stderr', 'bigint')
    .execute();

  // Existing logs: number their lines in seq order, one attempt at a time.
  const attempts = await sql<{ attempt_id: string }>`
    select distinct attempt_id from events where type = 'log_line' and attempt_id is not null
  `.execute(db);
  for (const { attempt_id } of attempts.rows) {
    const rows = await sql<{ seq: number; data: string }>`
      select seq, data from events where attempt_id = ${attempt_id} and type = 'log_line' order by seq
    `.execute(db);
    let at = 0;
    for (const r of rows.rows) {
      await sql`update events set log_offset = ${at} where seq = ${r.seq}`.execute(db);
      at += Buffer.byteLength(`${(JSON.parse(r.data) as { text: string }).text}\n`);
    }
    await sql`
      insert into attempt_logs (attempt_id, lines, bytes, stdout_skip, stderr_skip, events_skip)
      values (${attempt_id}, ${rows.rows.length}, ${at}, 0, 0, 0)
    `.execute(db);
  }
}
