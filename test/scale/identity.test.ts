// Two servers with one identity (issue 17.9): a data dir copied with its instance.json. The second is
// refused at start with a clear message while the first's lease is live, on Postgres by the lease
// itself and on SQLite already by the one-server lock on the database file; once the first has stopped
// and its lease lapsed, the copy may start as that instance.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { DIALECTS, dbUrlFor, quietLogger, tempDir, testConfig } from '../helpers/engine.ts';

const engines: Lifeline[] = [];
afterAll(async () => {
  for (const e of engines) await e.close();
});

async function open(dir: string, db: string): Promise<Lifeline> {
  const e = await openLifeline({ config: testConfig(dir, { lease_ttl: '1s' }, db), logger: quietLogger() });
  engines.push(e);
  await e.start();
  return e;
}

describe.each(DIALECTS)('one instance.json in two data dirs (%s)', (dialect) => {
  it('the second server is refused while the first runs, and may start once it stopped', async () => {
    const dirA = tempDir();
    const dirB = tempDir();
    const db = await dbUrlFor(dialect, dirA);
    const a = await open(dirA, db);
    fs.copyFileSync(path.join(dirA, 'instance.json'), path.join(dirB, 'instance.json'));
    const refused = open(dirB, db);
    if (dialect === 'postgres') {
      await expect(refused).rejects.toThrow(
        new RegExp(
          `instance ${a.instanceId} is already running \\(pid ${process.pid} on .*data dir ${dirA}\\)`,
        ),
      );
    } else {
      await expect(refused).rejects.toThrow(/another Lifeline server is using .*lifeline\.db \(pid \d+ on /);
    }
    // The first still holds its lease, epoch unchanged: the refused one wrote nothing.
    const row = await a.store.db
      .selectFrom('instances')
      .selectAll()
      .where('id', '=', a.instanceId)
      .executeTakeFirstOrThrow();
    expect({ epoch: Number(row.epoch), data_dir: row.data_dir }).toEqual({ epoch: 1, data_dir: dirA });
    await a.close();
    await new Promise((r) => setTimeout(r, 1_200)); // one lease_ttl
    const b = await open(dirB, db);
    expect(b.instanceId).toBe(a.instanceId);
  }, 30_000);
});
