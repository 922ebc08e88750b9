// The client-side peer of bench/stacks.ts, in a process of its own: deploys STAGES × WIDTH existing
// deployments `<prefix>-s<k>-<i>` through the public HTTP API, a stage at a time, as a script would
// without stacks: every attempt of a stage requested at once, then each deployment polled until `ready`
// before the next stage starts. Prints {"ms": <wall time>} on stdout.
//   node bench/procs/stages.mjs PORT PREFIX STAGES WIDTH POLL_MS
import http from 'node:http';

const [port, prefix, stages, width, pollMs] = process.argv.slice(2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function request(method, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: Number(port), method, path, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : null }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function ready(name) {
  for (;;) {
    const r = await request('GET', `/v1/deployments/${name}`);
    if (r.json.state === 'ready') return;
    if (r.json.state !== 'deploying') throw new Error(`${name} ended ${r.json.state}`);
    await new Promise((res) => setTimeout(res, Number(pollMs)));
  }
}

const t0 = performance.now();
for (let k = 1; k <= Number(stages); k++) {
  const names = Array.from({ length: Number(width) }, (_, i) => `${prefix}-s${k}-${i + 1}`);
  const accepted = await Promise.all(names.map((n) => request('POST', `/v1/deployments/${n}/attempts`)));
  for (const [i, r] of accepted.entries()) if (r.status !== 202) throw new Error(`${names[i]}: ${r.status}`);
  await Promise.all(names.map(ready));
}
process.stdout.write(`${JSON.stringify({ ms: performance.now() - t0 })}\n`);
agent.destroy();
