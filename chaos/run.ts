// `npm run chaos`: real `lifeline serve` processes under a mixed HTTP load while faults are injected
// (instances SIGKILLed, plans killed with and without their supervisors, Postgres restarted), then a
// settle and a check of every SPEC §8 invariant over the database. See docs/reliability.md.
//   npm run chaos -- [--store sqlite|postgres] [--duration 2m] [--instances 3] [--seed N]
//                    [--workers 3] [--settle 2m] [--skew 10m] [--keep]
// One instance runs with its clock off by --skew (LIFELINE_CLOCK_OFFSET_MS): on postgres instance 1,
// fast, so it judges retries its peers scheduled; on sqlite the only one, slow (the hook shifts only the
// server's clock, not its supervisors', which date a plan's end: a fast instance would take every end
// as --skew old and schedule each retry due at once, leaving nothing to judge). Every instance delivers
// a webhook to a receiver in this process.
// On postgres it starts a throwaway cluster (test/helpers/pg.ts), or creates a fresh database on the
// server LIFELINE_CHAOS_PG_URL names (then it cannot restart the database, and says so).
// Prints a human summary, then one line `CHAOS_SUMMARY {json}`; exits 1 on any invariant violation,
// any 5xx other than 503 STORE_UNAVAILABLE, any instance that died on its own, or no settle.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/config/duration.ts';
import { openStore } from '../src/store/open.ts';
import { snapshotOf } from '../test/helpers/invariants.ts';
import { gateSnapshotOf, type GateSnapshot } from '../test/helpers/stack-invariants.ts';
import { adminQuery, ensureDatabase, PgCluster } from '../test/helpers/pg.ts';
import { killAllServers } from '../test/helpers/servers.ts';
import { Faults, killLeftovers, type Database } from './faults.ts';
import { Fleet } from './fleet.ts';
import { authConfig, gatedPlans, newTokens, type Tokens } from './gated.ts';
import { isStopped, leftoversOf, runDirOf } from './leftovers.ts';
import { Load, OPS } from './load.ts';
import { Random } from './random.ts';
import { HOOK_EVENTS, Receiver, type HookEvent } from './receiver.ts';
import { printSummary, type Summary } from './summary.ts';
import { outcomes, verify, verifyExtras } from './verify.ts';
import { verifyGates } from './verify-gates.ts';

const PLANS = path.resolve(import.meta.dirname, 'plans');

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    duration: { type: 'string', default: '2m' },
    instances: { type: 'string' },
    seed: { type: 'string' },
    workers: { type: 'string', default: '3' },
    settle: { type: 'string', default: '2m' },
    skew: { type: 'string', default: '10m' },
    keep: { type: 'boolean', default: false },
  },
});

const store = args.store;
if (store !== 'sqlite' && store !== 'postgres') {
  console.error(`--store must be sqlite or postgres, not ${store}`);
  process.exit(2);
}
const durationMs = parseDuration(args.duration!);
const settleMs = parseDuration(args.settle!);
const skewMs = args.skew === '0' ? 0 : parseDuration(args.skew!);
const instances = store === 'sqlite' ? 1 : Number(args.instances ?? 3);
if (store === 'sqlite' && args.instances !== undefined && args.instances !== '1') {
  console.error('--instances: SQLite has one instance per database file');
  process.exit(2);
}
const seed = args.seed !== undefined ? Number(args.seed) : randomBytes(4).readUInt32BE();
const workers = Number(args.workers);
for (const [k, n] of Object.entries({ instances, seed, workers })) {
  if (!Number.isSafeInteger(n) || n < (k === 'seed' ? 0 : 1)) {
    console.error(`--${k} must be a whole number`);
    process.exit(2);
  }
}

const t0 = Date.now();
const log = (line: string) => console.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const work = {
  description: 'chaos: sleeps a little, prints, fails when asked',
  deploy: [path.join(PLANS, 'work.sh')],
  teardown: [path.join(PLANS, 'work.sh')],
  check: [path.join(PLANS, 'check.sh')],
  timeout: '5s',
  cancel_grace: '1s',
  check_timeout: '10s',
  retry: { max: 2, backoff: '1s', max_backoff: '2s' },
  params: {
    type: 'object',
    properties: {
      sleep: { type: 'number', minimum: 0, maximum: 30 },
      lines: { type: 'integer', minimum: 0, maximum: 100 },
      fail: { type: 'boolean' },
      token: { type: 'string', writeOnly: true },
      stubborn: { type: 'boolean' },
    },
    additionalProperties: false,
  },
};
const plans = { work, ...gatedPlans(work) };
const HOOK_SECRET_ENV = 'LIFELINE_CHAOS_HOOK_SECRET';
// Short leases and reconciles so that a crash is noticed within the run.
const extra = (hookUrl: string, tokens: Tokens) => ({
  auth: authConfig(tokens),
  webhooks: [
    { name: 'chaos', url: hookUrl, secret_env: HOOK_SECRET_ENV, events: HOOK_EVENTS, timeout: '5s' },
  ],
  lease_ttl: '3s',
  reap_interval: '1s',
  start_deadline: '5s',
  ...(store === 'postgres'
    ? { database: { pool_max: 5, connect_timeout: '1s', statement_timeout: '10s' } }
    : {}),
});
/** The instance whose clock is off: the second on postgres (the first runs the migrations). */
const SKEWED = store === 'sqlite' ? 0 : 1;

async function main(): Promise<number> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-chaos-'));
  const secret = `chaos-secret-${randomBytes(6).toString('hex')}`;
  const tokens = newTokens();
  const auth = { authorization: `Bearer ${tokens.admin}` };
  log(
    `store ${store}, ${instances} instance(s), duration ${args.duration}, seed ${seed}, dir ${root}` +
      (skewMs ? `, instance ${SKEWED}'s clock ${args.skew} ${store === 'sqlite' ? 'slow' : 'fast'}` : ''),
  );

  let cluster: PgCluster | null = null;
  let dbUrl: string;
  let database: Database | null = null;
  let dropDb: (() => Promise<void>) | null = null;
  if (store === 'sqlite') dbUrl = `sqlite:${path.join(root, 'lifeline.db')}`;
  else if (process.env.LIFELINE_CHAOS_PG_URL) {
    const server = process.env.LIFELINE_CHAOS_PG_URL;
    const name = `lifeline_chaos_${randomBytes(4).toString('hex')}`;
    dbUrl = await ensureDatabase(server, name);
    dropDb = () => adminQuery(server, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).then(() => undefined);
    log(`database ${name} on LIFELINE_CHAOS_PG_URL; not ours to restart, so no database restarts`);
  } else {
    cluster = await PgCluster.create();
    dbUrl = await ensureDatabase(cluster.url, 'lifeline');
    const c = cluster;
    database = { stop: () => c.stop('fast'), start: () => c.start() };
    log(`throwaway cluster on port ${cluster.port}`);
  }

  const rng = new Random(seed);
  // Stopped means stopped: each cancelled or timed-out end, as it is delivered, finds nothing alive.
  const leftovers: string[] = [];
  const onEvent = (e: HookEvent) => {
    const d = e.data as { state?: string; reason?: string | null };
    if (e.type !== 'attempt_end' || !e.attempt_id || !isStopped(String(d.state), d.reason ?? null)) return;
    const left = leftoversOf(e.attempt_id, runDirOf(fleet.dataDirs, e.attempt_id));
    if (left.length > 0)
      leftovers.push(
        `leftover: attempt ${e.attempt_id} reported ${d.state}/${d.reason} (seq ${e.seq}) while pids ${left.join(',')} of it lived`,
      );
  };
  const receiver = new Receiver(rng.fork(), onEvent);
  await receiver.start();
  const offsetOf = (i: number) => (i !== SKEWED ? 0 : store === 'sqlite' ? -skewMs : skewMs);
  const fleet = new Fleet({
    db: dbUrl,
    root,
    count: instances,
    plans,
    extra: extra(receiver.url, tokens),
    env: (i) => ({ [HOOK_SECRET_ENV]: receiver.secret, LIFELINE_CLOCK_OFFSET_MS: String(offsetOf(i)) }),
    log,
  });
  // Interrupted (Ctrl-C, a CI timeout, a closed pipe): leave no server, plan or cluster behind.
  let interrupted = false;
  const abandon = () => {
    if (interrupted) return;
    interrupted = true;
    void (async () => {
      await killAllServers().catch(() => undefined);
      killLeftovers(fleet.dataDirs);
      await cluster?.destroy().catch(() => undefined);
      fs.rmSync(root, { recursive: true, force: true });
      process.exit(130);
    })();
  };
  process.once('SIGINT', abandon);
  process.once('SIGTERM', abandon);
  process.stdout.on('error', abandon);
  let exitCode = 1;
  try {
    await fleet.start();
    log(`instances listening: ${Array.from({ length: fleet.size }, (_, i) => fleet.url(i)).join(' ')}`);

    const load = new Load(fleet, secret, `c${seed.toString(36)}`, tokens);
    const faults = new Faults(fleet, database, log);
    const running = Promise.all([load.run(workers, rng.fork()), faults.run(rng.fork())]);
    await sleep(durationMs);
    log('load and faults stop');
    faults.stop();
    load.stop();
    await running;
    receiver.stopFailing();

    // Settle: every instance restarted (each start reconciles), then no queued/running attempts.
    const restartStart = Date.now();
    for (let i = 0; i < fleet.size; i++) {
      await fleet.stop(i);
      await fleet.restart(i);
    }
    // --settle counts from here: how long the restarts took is the machine's (tsx compiling on a
    // loaded machine took 40-70 s an instance), not the product's settling.
    const settleStart = Date.now();
    log(`instances restarted in ${((settleStart - restartStart) / 1000).toFixed(1)} s`);
    const unstuck = { resolved: 0 };
    let settled = await waitSettled(fleet, auth, settleStart + settleMs, unstuck);
    // A few more reconciles, for late results of exit records that appeared at the very end.
    await sleep(3000);
    const hooked = settled && (await waitDelivered(fleet, auth, settleStart + settleMs));
    if (settled && !hooked) log('the webhook did not catch up');
    settled = hooked;
    const settleSeconds = (Date.now() - settleStart) / 1000;
    log(settled ? `settled in ${settleSeconds.toFixed(1)} s` : `did not settle in ${args.settle}`);
    await fleet.stopAll();

    const snap = await snapshot(dbUrl);
    const verdict = verify(snap, secret, fleet.output());
    verdict.violations.push(...leftovers);
    const checks = verifyExtras(
      snap,
      {
        clocks: fleet.dataDirs.map((dataDir, i) => ({ dataDir, offsetMs: offsetOf(i) })),
        deliveries: receiver.deliveries,
        hookEvents: HOOK_EVENTS,
      },
      verdict.violations,
    );
    const gates = verifyGates(snap, verdict.violations);
    const summary: Summary = {
      store,
      seed,
      instances,
      duration_s: durationMs / 1000,
      workers,
      operations: {
        total: OPS.reduce((n, op) => n + Object.values(load.counts[op]).reduce((a, b) => a + b, 0), 0),
        by_kind: load.counts,
        refusals: load.refusals,
      },
      server_errors: load.bad.length,
      server_error_samples: load.bad.slice(0, 5),
      secret_in_responses: load.leaks.length,
      crashes: {
        instances_killed: faults.done.kill_instance,
        plans_killed: faults.done.kill_plan,
        plans_and_supervisors_killed: faults.done.kill_plan_and_supervisor,
        supervisors_killed: faults.done.kill_supervisor,
        db_restarts: faults.done.db_restart,
        faults_without_target: faults.skipped,
        instances_died_on_their_own: fleet.unexpected.length,
      },
      unexpected_exits: fleet.unexpected.slice(0, 3),
      settle: {
        settled,
        seconds: Math.round(settleSeconds * 10) / 10,
        slot_holders_resolved: unstuck.resolved,
      },
      invariants: {
        checked: verdict.checked,
        violations: verdict.violations.length,
        by_kind: countKinds(verdict.violations),
        details: firstOfEachKind(verdict.violations, 5),
      },
      outcomes: outcomes(snap),
      skew: { instance: SKEWED, offset_ms: offsetOf(SKEWED) },
      checks,
      gates,
      ok: false,
    };
    summary.ok =
      summary.invariants.violations === 0 &&
      summary.server_errors === 0 &&
      summary.secret_in_responses === 0 &&
      summary.crashes.instances_died_on_their_own === 0 &&
      settled;
    printSummary(summary);
    exitCode = summary.ok ? 0 : 1;
  } finally {
    await fleet.stopAll().catch(() => undefined);
    await receiver.close();
    const left = killLeftovers(fleet.dataDirs);
    if (left > 0) log(`killed ${left} leftover plan processes`);
    if (cluster && !args.keep) await cluster.destroy().catch(() => undefined);
    if (dropDb && !args.keep) await dropDb().catch(() => undefined);
    if (!args.keep) fs.rmSync(root, { recursive: true, force: true });
    else log(`kept ${root}${cluster ? ` (cluster still running: ${cluster.url})` : ''}`);
  }
  return exitCode;
}

/**
 * Until no deployment is deploying or tearing down, nor failed with a retry waiting, nor a stack run
 * active (asked of the first instance), or the deadline. An `unknown` attempt keeps its slot until it is
 * resolved: while attempts wait for the slot, the `unknown` deployments of its plan are resolved, as an
 * operator would (counted in `unstuck`).
 */
async function waitSettled(
  fleet: Fleet,
  headers: HeadersInit,
  deadline: number,
  unstuck: { resolved: number },
): Promise<boolean> {
  const get = async <T>(p: string): Promise<T[]> =>
    ((await (await fetch(`${fleet.url(0)}${p}`, { headers })).json()) as { items: T[] }).items;
  while (Date.now() < deadline) {
    try {
      if ((await get('/v1/attempts?waiting=true&gate=concurrency')).length > 0) {
        const stuck = await get<{ name: string; plan: string }>('/v1/deployments?state=unknown&limit=100');
        for (const d of stuck.filter((x) => x.plan === 'slot')) {
          const res = await fetch(`${fleet.url(0)}/v1/deployments/${d.name}/resolve`, {
            method: 'POST',
            headers: { ...headers, 'content-type': 'application/json' },
            body: JSON.stringify({ state: 'failed', reason: 'chaos settle: frees the slot it holds' }),
          });
          if (res.ok) unstuck.resolved++;
        }
      }
    } catch {
      // not answering yet
    }
    let busy = 0;
    let answered = false;
    for (const state of ['deploying', 'tearing_down', 'failed']) {
      try {
        const res = await fetch(`${fleet.url(0)}/v1/deployments?state=${state}&limit=100`, { headers });
        if (res.ok) {
          answered = true;
          const items = ((await res.json()) as { items: { retry: unknown }[] }).items;
          busy += state === 'failed' ? items.filter((d) => d.retry !== null).length : items.length;
        }
      } catch {
        // not answering yet
      }
    }
    try {
      // and no stack run active
      const res = await fetch(`${fleet.url(0)}/v1/stacks?limit=500`, { headers });
      const items = ((await res.json()) as { items: { active_run: unknown }[] }).items;
      busy += items.filter((s) => s.active_run !== null).length;
    } catch {
      answered = false;
    }
    if (answered && busy === 0) return true;
    await sleep(500);
  }
  return false;
}

/** `leftover: …` → leftover, `§8.4 attempt …` → §8.4, `history of attempt …` → history. */
function countKinds(violations: string[]): Record<string, number> {
  const n: Record<string, number> = {};
  for (const v of violations) {
    const kind = /^[^\s:]+/.exec(v)?.[0] ?? '?';
    n[kind] = (n[kind] ?? 0) + 1;
  }
  return n;
}

/** At most `n` violations of each kind, in their order. */
function firstOfEachKind(violations: string[], n: number): string[] {
  const seen: Record<string, number> = {};
  return violations.filter((v) => {
    const kind = /^[^\s:]+/.exec(v)?.[0] ?? '?';
    seen[kind] = (seen[kind] ?? 0) + 1;
    return seen[kind] <= n;
  });
}

/** Until the webhook has nothing pending (every selected event answered 2xx), or the deadline. */
async function waitDelivered(fleet: Fleet, headers: HeadersInit, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${fleet.url(0)}/v1/webhooks`, { headers });
      const hook = ((await res.json()) as { items: { name: string; pending: number }[] }).items.find(
        (h) => h.name === 'chaos',
      );
      if (hook && hook.pending === 0) return true;
    } catch {
      // not answering yet
    }
    await sleep(500);
  }
  return false;
}

/** Every instance has stopped: nothing writes while the tables are read. */
async function snapshot(url: string): Promise<GateSnapshot> {
  const s = await openStore(url);
  try {
    return await gateSnapshotOf(s.db, await snapshotOf(s.db));
  } finally {
    await s.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
