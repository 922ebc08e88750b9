// Shared by the peer worker processes (bench/procs.ts forks one per peer): the no-op each job runs and
// the IPC protocol. The parent sends {run: n}; the worker enqueues n jobs as that peer's users would
// (one call), runs them 8 at a time and answers {done: n} once all n have completed.
import { spawn } from 'node:child_process';

export const CONC = 8;
export const NOOP = process.env.BENCH_NOOP ?? '/bin/true';

export function noop() {
  return new Promise((resolve, reject) => {
    const c = spawn(NOOP, [], { stdio: 'ignore' });
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`no-op exited ${code}`))));
    c.once('error', reject);
  });
}

/** Counts completions; `until(n)` resolves once n more have completed. */
export function counter() {
  let done = 0;
  let waiter = null;
  return {
    one() {
      done++;
      if (waiter && done >= waiter.target) {
        const w = waiter;
        waiter = null;
        w.resolve();
      }
    },
    until(n) {
      return new Promise((resolve) => (waiter = { target: done + n, resolve }));
    },
  };
}

/** Serves {run: n} from the parent with `run(n)`; {stop} closes and exits. */
export function serve(run, close) {
  process.on('message', async (m) => {
    try {
      if (m.run) {
        await run(m.run);
        process.send({ done: m.run });
      } else if (m.stop) {
        await close();
        process.disconnect();
        process.exit(0);
      }
    } catch (err) {
      process.send({ error: String(err?.stack ?? err) });
    }
  });
  process.send({ ready: true });
}
