// Child process of bench/stream.ts: holds N event-stream connections to the server (so that their
// parsing does not run on the server's event loop) and records when each `id:` arrives on each one.
// Talks to its parent over IPC: {ready}, then {receipts} on request, or {done} once every stream has
// reached a seq. With `hold`, it first says {loaded} and opens nothing until told {go}: then all N
// connections are opened in one synchronous loop, as tabs reconnecting after a restart do, and the
// parent times exactly that storm rather than this process's start-up.
import http from 'node:http';
import { performance } from 'node:perf_hooks';

interface Args {
  base: string;
  n: number;
  /** Paths per connection, used round-robin. */
  paths: string[];
  /** When set: report {done} once every stream has seen this seq, then exit. */
  until?: number;
  /** Wait for {go} before connecting. */
  hold?: boolean;
}

const args = JSON.parse(process.argv[2]) as Args;
const now = () => performance.timeOrigin + performance.now();
/** seq -> receipt times (one per stream that received it). */
const receipts = new Map<number, number[]>();
const last: number[] = new Array<number>(args.n).fill(0);
const reqs: http.ClientRequest[] = [];
let connected = 0;
let reached = 0;
let started = now();

function open(i: number): void {
  const req = http.get(
    `${args.base}${args.paths[i % args.paths.length]}`,
    { agent: false, headers: { accept: 'text/event-stream' } },
    (res) => {
      res.setEncoding('utf8');
      if (++connected === args.n) process.send!({ ready: true });
      let tail = '';
      res.on('data', (chunk: string) => {
        const t = now();
        const text = tail + chunk;
        const cut = text.lastIndexOf('\n\n');
        if (cut < 0) {
          tail = text;
          return;
        }
        tail = text.slice(cut + 2);
        const re = /^id: (\d+)$/gm;
        let m: RegExpExecArray | null;
        while ((m = re.exec(text.slice(0, cut + 2))) !== null) {
          const seq = Number(m[1]);
          if (seq <= last[i]) continue;
          const before = last[i];
          last[i] = seq;
          if (args.until === undefined) {
            let xs = receipts.get(seq);
            if (!xs) receipts.set(seq, (xs = []));
            xs.push(t);
          } else if (before < args.until && seq >= args.until && ++reached === args.n) {
            process.send!({ done: t - started });
            setTimeout(() => process.exit(0), 50);
          }
        }
      });
    },
  );
  req.on('error', () => undefined);
  reqs.push(req);
}

function openAll(): void {
  started = now();
  for (let i = 0; i < args.n; i++) open(i);
}

if (args.hold) process.send!({ loaded: true });
else openAll();

process.on('message', (msg: { report?: boolean; exit?: boolean; go?: boolean }) => {
  if (msg.go) openAll();
  if (msg.report) {
    process.send!({ receipts: [...receipts.entries()] });
    receipts.clear();
  }
  if (msg.exit) {
    for (const r of reqs) r.destroy();
    process.exit(0);
  }
});
