// Webhooks (SPEC §10) from a real `lifeline serve` child to a real receiver on 127.0.0.1 that checks
// every signature with the standardwebhooks library, answers 500 at random and sometimes hangs past
// the timeout; a second webhook answers 410 once; a third selects only log_line. The server is
// SIGKILLed while a delivery hangs and restarted: delivery resumes from the durable cursor.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, tempDir, waitFor } from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';
import { bearer, expectProblem, harness, type Harness } from './helpers.ts';
import { lifelineArgv } from '../helpers/lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const secret = (): string => `whsec_${randomBytes(24).toString('base64')}`;
const SECRETS = { main: secret(), gone: secret(), logs: secret() };
type HookName = keyof typeof SECRETS;

interface Received {
  seq: number;
  type: string;
  valid: boolean;
}

// The faults at `main`, per delivery: a 500, or a hang past the webhook's timeout. Each one costs the
// worker's backoff (random, up to 1 s doubling per failure in a row), which is most of this test's
// time. The default suite answers 500 to one delivery in 10 and fails one event at most twice in a
// row; LIFELINE_TEST_FULL=1, one in 5 and no limit. Hangs are one in 10 in both.
const P_500 = scaled(0.1, 0.2);
const P_HANG = 0.1;
const MAX_REFUSED_IN_A_ROW = scaled(2, Infinity);

const received: Record<HookName, Received[]> = { main: [], gone: [], logs: [] };
const held: http.ServerResponse[] = [];
/** The held deliveries whose request is still open (the server has not given up on it). */
const hanging = new Set<http.ServerResponse>();
/** How often each seq was answered 500 or left hanging at `main`. */
const refused = new Map<number, number>();
let holding = false;
let heldSeq: number | null = null;
let receiver: http.Server;
let receiverUrl = '';

function startReceiver(): Promise<void> {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const hook = (req.url ?? '').slice(1) as HookName;
      let valid = false;
      let event: { seq: number; type: string } = { seq: -1, type: '' };
      try {
        event = new Webhook(SECRETS[hook]).verify(
          body,
          req.headers as Record<string, string>,
        ) as typeof event;
        valid = req.headers['webhook-id'] === `evt_${event.seq}`;
      } catch {
        valid = false;
      }
      received[hook].push({ seq: event.seq, type: event.type, valid });
      if (hook === 'gone') return void res.writeHead(received.gone.length === 1 ? 410 : 200).end();
      if (hook === 'main') {
        if (holding) {
          // Never answered, nor any retry of it (the cursor stays on it) until the server is killed.
          heldSeq ??= event.seq;
          held.push(res);
          hanging.add(res);
          res.once('close', () => hanging.delete(res));
          return;
        }
        const r = Math.random();
        const times = refused.get(event.seq) ?? 0;
        if (r < P_500 + P_HANG && times < MAX_REFUSED_IN_A_ROW) {
          refused.set(event.seq, times + 1);
          if (r < P_500) return void res.writeHead(500).end('flaky');
          // Hangs past the 500 ms timeout, then answers 200 to nobody.
          setTimeout(() => res.writeHead(200).end(), 1500).unref();
          return;
        }
      }
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) =>
    receiver.listen(0, '127.0.0.1', () => {
      receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
      resolve();
    }),
  );
}

interface Child {
  proc: ChildProcess;
  out: () => string;
  url: Promise<string>;
}
const children: Child[] = [];
let configFile = '';

function startServer(): Child {
  const proc = spawn(process.execPath, [...lifelineArgv(), 'serve', '--config', configFile], {
    cwd: ROOT,
    env: {
      ...process.env,
      LIFELINE_LOG_LEVEL: 'info',
      LIFELINE_WH_MAIN: SECRETS.main,
      LIFELINE_WH_GONE: SECRETS.gone,
      LIFELINE_WH_LOGS: SECRETS.logs,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b) => (out += b));
  proc.stderr!.on('data', (b) => (out += b));
  const url = waitFor(
    () => {
      if (proc.exitCode !== null) throw new Error(`server exited: ${out}`);
      return /Lifeline listening on (http:\/\/[^"\s]+)/.exec(out)?.[1] ?? null;
    },
    'the server to listen',
    30_000,
  );
  const child = { proc, out: () => out, url };
  children.push(child);
  return child;
}

async function call(base: string, method: string, url: string, body?: unknown) {
  const res = await fetch(base + url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function deploy(base: string, name: string): Promise<void> {
  expect((await call(base, 'POST', '/v1/deployments', { name, plan: 'ok' })).status).toBe(201);
  expect((await call(base, 'POST', `/v1/deployments/${name}/attempts`, {})).status).toBe(202);
  await waitFor(
    async () => (await call(base, 'GET', `/v1/deployments/${name}`)).json().state === 'ready',
    name,
  );
}

beforeAll(async () => {
  await startReceiver();
  const dir = tempDir('lifeline-webhooks-');
  configFile = path.join(dir, 'lifeline.yaml');
  fs.writeFileSync(
    configFile,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      db: 'sqlite:./lifeline.db',
      data_dir: './data',
      lease_ttl: '2s',
      plans: { ok: { deploy: [path.join(FIXTURES, 'ok.sh')], teardown: [path.join(FIXTURES, 'ok.sh')] } },
      webhooks: [
        { name: 'main', url: `${receiverUrl}/main`, secret_env: 'LIFELINE_WH_MAIN', timeout: '500ms' },
        { name: 'gone', url: `${receiverUrl}/gone`, secret_env: 'LIFELINE_WH_GONE' },
        { name: 'logs', url: `${receiverUrl}/logs`, secret_env: 'LIFELINE_WH_LOGS', events: ['log_line'] },
      ],
    }),
  );
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
  for (const r of held) r.destroy();
  await new Promise((r) => receiver?.close(r));
});

/** Every event that is not a log_line, and every log_line, as the API lists them. */
async function eventSeqs(base: string): Promise<{ main: number[]; logs: number[] }> {
  const items: { seq: number; type: string }[] = [];
  let after = 0;
  for (;;) {
    const page = (await call(base, 'GET', `/v1/events?after=${after}&limit=1000`)).json();
    items.push(...page.items);
    if (page.items.length < 1000) break;
    after = page.next_after;
  }
  return {
    main: items.filter((e) => e.type !== 'log_line').map((e) => e.seq),
    logs: items.filter((e) => e.type === 'log_line').map((e) => e.seq),
  };
}

/** At least once, in seq order: the first arrival of each seq comes in increasing order. */
function firstArrivals(list: Received[]): number[] {
  const seen = new Set<number>();
  const out: number[] = [];
  for (const r of list) {
    if (seen.has(r.seq)) continue;
    seen.add(r.seq);
    out.push(r.seq);
  }
  return out;
}

describe('webhook delivery', () => {
  it('delivers every selected event at least once, in order, signed, through failures and a SIGKILL', async () => {
    const first = startServer();
    const base1 = await first.url;
    await deploy(base1, 'web-1');
    await deploy(base1, 'web-2');
    await waitFor(() => received.main.length >= 5, 'some deliveries', 30_000);

    // From the next delivery to `main` on, nothing is answered there; the server dies while one of
    // them hangs (a retry of the held event, should the first have timed out meanwhile).
    holding = true;
    await deploy(base1, 'web-3');
    await waitFor(() => heldSeq !== null && hanging.size > 0, 'a held delivery', 30_000);
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    holding = false;
    const afterKill = received.main.length;

    const second = startServer();
    const base2 = await second.url;
    await deploy(base2, 'web-4');
    const want = await eventSeqs(base2);
    await waitFor(
      () => {
        const got = new Set(received.main.map((r) => r.seq));
        return want.main.every((s) => got.has(s));
      },
      'every selected event at main',
      90_000,
    );
    await waitFor(
      () => {
        const got = new Set(received.logs.map((r) => r.seq));
        return want.logs.every((s) => got.has(s));
      },
      'every log_line at logs',
      30_000,
    );

    expect(refused.size, 'deliveries refused with a 500 or a hang').toBeGreaterThan(0);
    expect(received.main.every((r) => r.valid)).toBe(true);
    expect(received.logs.every((r) => r.valid)).toBe(true);
    expect(received.main.some((r) => r.type === 'log_line')).toBe(false);
    expect(received.logs.every((r) => r.type === 'log_line')).toBe(true);
    expect(want.logs.length).toBeGreaterThan(0);
    const mainFirst = firstArrivals(received.main);
    expect(mainFirst).toEqual(want.main);
    expect(firstArrivals(received.logs)).toEqual(want.logs);
    // The delivery the kill cut short (never answered before it) came again from the cursor.
    expect(received.main.filter((r) => r.seq === heldSeq).length).toBeGreaterThanOrEqual(2);
    expect(received.main.slice(afterKill).some((r) => r.seq === heldSeq)).toBe(true);

    // 410 once: disabled, nothing more sent there.
    expect(received.gone).toHaveLength(1);
    // A receipt comes before the cursor's commit: wait for the cursors to reach the head.
    const byName = await waitFor(
      async () => {
        const hooks = (await call(base2, 'GET', '/v1/webhooks')).json().items as Record<string, unknown>[];
        const m = Object.fromEntries(hooks.map((h) => [h.name, h]));
        return m.main?.pending === 0 && m.logs?.pending === 0 ? m : null;
      },
      'the cursors at the head',
      30_000,
    );
    expect(byName.gone).toMatchObject({ enabled: false, last_status: 410 });
    expect(byName.main).toMatchObject({ enabled: true, pending: 0 });
    expect(byName.main.delivered_seq).toBeGreaterThanOrEqual(want.main[want.main.length - 1]);
    expect(byName.logs).toMatchObject({ events: ['log_line'], pending: 0 });

    // Redeliver moves the cursor back: seq 1 arrives again.
    const before = received.main.filter((r) => r.seq === 1).length;
    const redo = await call(base2, 'POST', '/v1/webhooks/main/redeliver', { from_seq: 1 });
    expect(redo.status, redo.text).toBe(200);
    expect(redo.json()).toMatchObject({ name: 'main', delivered_seq: 0 });
    await waitFor(() => received.main.filter((r) => r.seq === 1).length > before, 'seq 1 again', 30_000);
    expect((await call(base2, 'POST', '/v1/webhooks/nope/redeliver', { from_seq: 1 })).status).toBe(404);
    expect((await call(base2, 'POST', '/v1/webhooks/main/redeliver', { from_seq: 0 })).status).toBe(422);

    // The secrets are nowhere: not in the server's log lines, the API, or the events.
    const everything = [
      first.out(),
      second.out(),
      (await call(base2, 'GET', '/v1/webhooks')).text,
      (await call(base2, 'GET', '/v1/events?limit=1000')).text,
      (await call(base2, 'GET', '/metrics')).text,
    ].join('\n');
    for (const s of Object.values(SECRETS)) {
      expect(everything).not.toContain(s);
      expect(everything).not.toContain(s.slice('whsec_'.length));
    }
    expect(second.out()).toMatch(/webhook delivery failed; will retry|webhook answered 410/);
    expect((await call(base2, 'GET', '/metrics')).text).toMatch(
      /^lifeline_webhook_lag_events\{webhook="main"\} \d+$/m,
    );
  }, 240_000);
});

describe('webhook routes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ auth: true });
  });
  afterAll(async () => h?.close());

  it('are admin only', async () => {
    const list = await h.app.inject({ method: 'GET', url: '/v1/webhooks', headers: bearer('operator') });
    expectProblem(list, 403, 'FORBIDDEN');
    const ok = await h.app.inject({ method: 'GET', url: '/v1/webhooks', headers: bearer('admin') });
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ items: [] });
    const redo = await h.app.inject({
      method: 'POST',
      url: '/v1/webhooks/x/redeliver',
      headers: { ...bearer('operator'), 'content-type': 'application/json' },
      payload: { from_seq: 1 },
    });
    expectProblem(redo, 403, 'FORBIDDEN');
  });
});
