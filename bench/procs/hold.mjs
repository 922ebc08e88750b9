// Preloaded into `lifeline serve` by bench/scale.ts (node --import): how long each transaction holds the
// `counters` row on Postgres, from the statement that updates it being sent to its COMMIT answered.
// Measured on the client, so as a lower bound: from the counter statement ANSWERED (the row is locked by
// then; its wait for the lock is before) to its COMMIT answered. The wait (sent → answered) is kept too.
// Written as JSON {holds, waits} (ms) to $BENCH_HOLD_FILE when the process exits.
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import pg from 'pg';

const holds = [];
const waits = [];
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, values, callback) {
  const text = typeof config === 'string' ? config : config?.text;
  const result = query.call(this, config, values, callback);
  if (typeof text === 'string') {
    if (text.includes('update "counters"')) {
      const sent = performance.now();
      this.benchHeldFrom = Infinity;
      result?.then?.(
        () => {
          const now = performance.now();
          waits.push(now - sent);
          if (this.benchHeldFrom === Infinity) this.benchHeldFrom = now;
        },
        () => undefined,
      );
    } else if (this.benchHeldFrom !== undefined && /^\s*(commit|rollback)\b/i.test(text)) {
      const from = this.benchHeldFrom;
      this.benchHeldFrom = undefined;
      result?.then?.(
        () => from !== Infinity && holds.push(performance.now() - from),
        () => undefined,
      );
    }
  }
  return result;
};
process.on('exit', () => {
  if (process.env.BENCH_HOLD_FILE)
    fs.writeFileSync(process.env.BENCH_HOLD_FILE, JSON.stringify({ holds, waits }));
});
