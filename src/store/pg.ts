// node-pg, loaded on first use: a server on SQLite never loads it (about a tenth of a second of its
// start-up). Both users of the module (the pool and the LISTEN client) go through here.
import { createRequire } from 'node:module';
import type Pg from 'pg';

let loaded: typeof Pg | null = null;

export function pgModule(): typeof Pg {
  if (loaded === null) {
    const pg = createRequire(import.meta.url)('pg') as typeof Pg;
    // int8 (bigint, counts) as JS numbers: seqs and byte offsets stay far below 2^53.
    pg.types.setTypeParser(20, (v) => Number(v));
    loaded = pg;
  }
  return loaded;
}
