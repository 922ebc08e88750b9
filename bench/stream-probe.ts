// Child process of bench/stream.ts: times GET /v1/health on a fresh connection every 20 ms, as an
// outside monitor would, so that the prober's own callbacks do not wait for the server's event loop
// (in the server's process, each probe needed three turns of that loop: connect, request, response).
// IPC: {loaded}; then {go} starts probing, {stop} answers {latencies} (ms) and exits.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const base = process.argv[2];
const latencies: number[] = [];
let running = false;

function probe(): Promise<number> {
  const t = performance.now();
  return new Promise((resolve) => {
    http
      .get(`${base}/v1/health`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t));
      })
      .on('error', () => resolve(Infinity)); // a refused or reset probe is a failed one
  });
}

async function loop(): Promise<void> {
  while (running) {
    latencies.push(await probe());
    await new Promise((r) => setTimeout(r, 20));
  }
  process.send!({ latencies });
  setTimeout(() => process.exit(0), 50);
}

process.on('message', (msg: { go?: boolean; stop?: boolean }) => {
  if (msg.go && !running) {
    running = true;
    void loop();
  }
  if (msg.stop) running = false;
});
process.send!({ loaded: true });
