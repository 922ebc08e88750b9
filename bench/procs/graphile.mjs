// graphile-worker 0.16 as its users run it: a worker process (concurrency 8, LISTEN/NOTIFY), jobs added
// with its SQL API (graphile_worker.add_job) in one statement. argv[2]: the database URL.
import { Logger, run } from 'graphile-worker';
import pg from 'pg';
import { CONC, counter, noop, serve } from './common.mjs';

const url = process.argv[2];
const count = counter();
const runner = await run({
  connectionString: url,
  concurrency: CONC,
  noHandleSignals: true,
  pollInterval: 2000,
  logger: new Logger(() => () => undefined),
  taskList: {
    noop: async () => {
      await noop();
      count.one();
    },
  },
});
const client = new pg.Client({ connectionString: url });
await client.connect();
serve(
  async (n) => {
    const finished = count.until(n);
    await client.query(
      `SELECT graphile_worker.add_job('noop', json_build_object('i', g)) FROM generate_series(1, $1::int) g`,
      [n],
    );
    await finished;
  },
  async () => {
    await client.end();
    await runner.stop();
  },
);
