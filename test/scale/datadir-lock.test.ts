// One server per data dir on both stores (docs/scaling.md, "The data-dir lock"): a second real
// `lifeline serve` on the same data_dir fails at once naming the holder; a SIGKILLed holder leaves no
// stale lock behind.
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbUrlFor, DIALECTS, tempDir } from '../helpers/engine.ts';
import { killAllServers, serve } from '../helpers/servers.ts';

afterAll(killAllServers);

describe.each(DIALECTS)('the data-dir lock (%s)', (dialect) => {
  it('a second server on the same data_dir refuses to start and names the holder; a crash frees it', async () => {
    const dir = tempDir('lifeline-ddlock-');
    const db = await dbUrlFor(dialect, dir);
    const dataDir = path.join(dir, 'data');
    const first = await serve({ db, dataDir });
    // On SQLite, a different database file: the data dir alone is what collides.
    const otherDb = dialect === 'sqlite' ? `sqlite:${path.join(dir, 'other.db')}` : db;
    const err = await serve({ db: otherDb, dataDir }).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/server exited with 1/);
    expect(err).toContain(`another Lifeline server is using data dir ${dataDir}`);
    expect(err).toContain(`pid ${first.proc.pid} on ${os.hostname()}`);

    await first.crash();
    const again = await serve({ db, dataDir });
    await again.stop();
  }, 120_000);
});
