// pg-boss 10 as its users run it: a worker process with 8 `work` loops (batchSize 1, polling every 0.5 s,
// its minimum), jobs inserted with boss.insert in one call. argv[2]: the database URL.
import PgBoss from 'pg-boss';
import { CONC, counter, noop, serve } from './common.mjs';

const url = process.argv[2];
const count = counter();
const boss = new PgBoss({ connectionString: url, max: CONC + 2, supervise: false, schedule: false });
boss.on('error', () => undefined);
await boss.start();
const queue = 'noop';
await boss.createQueue(queue);
for (let i = 0; i < CONC; i++) {
  await boss.work(queue, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async () => {
    await noop();
    count.one();
  });
}
serve(
  async (n) => {
    const finished = count.until(n);
    await boss.insert(Array.from({ length: n }, (_, i) => ({ name: queue, data: { i } })));
    await finished;
  },
  () => boss.stop({ graceful: false, wait: true }),
);
