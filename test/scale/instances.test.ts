// Several real `lifeline serve` processes on one Postgres database (SPEC §5, docs/scaling.md): concurrent
// writes across instances, an instance on "another machine" that dies and comes back, and an instance
// on the same machine whose orphan a peer adopts. "Another machine" is a private mount namespace: its
// data_dir is a bind mount only it sees, so peers cannot read its run dirs (they see an empty dir).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dbUrlFor, fixturePlans, FIXTURES, tempDir, waitFor } from '../helpers/engine.ts';
import { tellCtl } from '../helpers/fifo.ts';
import { call, killAllServers, serve, type Served } from '../helpers/servers.ts';

afterAll(killAllServers);

const SHORT = { lease_ttl: '1500ms', reap_interval: '300ms', start_deadline: '2s' };
// The attempts that outlive their instance's crash run `ctl` (fixturePlans): it runs until the test
// tells it (through its workspace's FIFO, test/helpers/fifo.ts) to exit, so it ends exactly when the
// test has seen what comes before its end, not after a sleep long enough to wait for it.
const plans = {
  ...fixturePlans(),
  // Outlives a crash and a restart: only a cancel or its timeout ends it early.
  long: {
    deploy: [path.join(FIXTURES, 'sleep.sh')],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    cancel_grace: '1s',
    env: { SLEEP_SECONDS: '120' },
  },
  // Its timeout falls after the crash (which comes as soon as both attempts run), around when the crash
  // is seen (lease_ttl + reap_interval: about 2 s later); it is carried out only by the owner once back,
  // whether the restart comes before or after it.
  longtimeout: {
    deploy: [path.join(FIXTURES, 'sleep.sh')],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    timeout: '5s',
    cancel_grace: '1s',
    env: { SLEEP_SECONDS: '120' },
  },
};

/** Argv prefix: a private mount namespace in which `hidden` is mounted over `seen`. */
function elsewhere(hidden: string, seen: string): string[] {
  fs.mkdirSync(hidden, { recursive: true });
  fs.mkdirSync(seen, { recursive: true });
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount --bind "$0" "$1" && shift 2 && exec "$@"',
    hidden,
    seen,
    'x',
  ];
}

const attempt = async (s: Served, id: string) => (await call(s.url, 'GET', `/v1/attempts/${id}`)).body;

describe('instances on one Postgres database', () => {
  it('concurrent create and deploy across three instances: one 201/202, the rest 409, no 5xx', async () => {
    const dir = tempDir('lifeline-multi-');
    const db = await dbUrlFor('postgres', dir);
    const servers = await Promise.all(
      [0, 1, 2].map((i) => serve({ db, dataDir: path.join(dir, `i${i}`), extra: SHORT, plans })),
    );
    const on = (i: number) => servers[i % servers.length];
    const creates = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        call(on(i).url, 'POST', '/v1/deployments', { name: 'one', plan: 'ok' }),
      ),
    );
    const cs = creates.map((r) => r.status).sort();
    expect(cs.filter((s) => s === 201)).toHaveLength(1);
    expect(cs.filter((s) => s === 409)).toHaveLength(11);
    const deploys = await Promise.all(
      Array.from({ length: 12 }, (_, i) => call(on(i).url, 'POST', '/v1/deployments/one/attempts', {})),
    );
    const ds = deploys.map((r) => r.status);
    expect(ds.filter((s) => s === 202)).toHaveLength(1);
    expect(ds.filter((s) => s === 409)).toHaveLength(11);
    for (const r of deploys.filter((d) => d.status === 409)) expect(r.body.code).toBe('ATTEMPT_IN_PROGRESS');
    const id = deploys.find((d) => d.status === 202)!.body.id;
    await waitFor(async () => (await attempt(on(1), id)).state === 'succeeded', 'the one attempt ends');
    await Promise.all(servers.map((s) => s.stop()));
  }, 420_000);

  it('another machine SIGKILLed: its attempt becomes unknown/runner_lost; restarted, it corrects it with late_result', async () => {
    const dir = tempDir('lifeline-far-');
    const db = await dbUrlFor('postgres', dir);
    const seen = path.join(dir, 'far');
    const hidden = path.join(dir, '.far-disk');
    const [peer, far] = await Promise.all([
      serve({ db, dataDir: path.join(dir, 'peer'), extra: SHORT, plans }),
      serve({ db, dataDir: seen, extra: SHORT, plans, wrap: elsewhere(hidden, seen) }),
    ]);
    const created = await call(far.url, 'POST', '/v1/deployments', { name: 'far', plan: 'ctl' });
    expect(created.status).toBe(201);
    const id = (await call(far.url, 'POST', '/v1/deployments/far/attempts', {})).body.id as string;
    await waitFor(async () => (await attempt(peer, id)).state === 'running', 'running');
    expect(fs.readdirSync(seen)).toEqual([]); // the peer cannot see the far instance's files

    await far.crash();
    const lost = await waitFor(async () => {
      const a = await attempt(peer, id);
      return a.state === 'unknown' ? a : null;
    }, 'unknown after lease TTL + reap interval');
    expect(lost.reason).toBe('runner_lost');

    // The plan finishes on its "machine" (told to exit 0, after it was seen lost); the instance comes
    // back and corrects the record.
    await tellCtl(hidden, created.body.id, 0);
    await waitFor(
      () => fs.existsSync(path.join(hidden, 'attempts', id, 'exit')) || null,
      'the exit record',
      30_000,
    );
    const back = await serve({ db, dataDir: seen, extra: SHORT, plans, wrap: elsewhere(hidden, seen) });
    const fixed = await waitFor(async () => {
      const a = await attempt(back, id);
      return a.state === 'succeeded' ? a : null;
    }, 'late_result');
    expect(fixed).toMatchObject({ rc: 0, recovered: true });
    const trail = JSON.stringify((await call(back.url, 'GET', '/v1/deployments/far/transitions')).body);
    expect(trail).toContain('late_result');
    await Promise.all([peer.stop(), back.stop()]);
  }, 420_000);

  it('an unknown attempt whose process lives is supervised again where it runs: cancel and timeout stop it, its exit corrects it', async () => {
    const dir = tempDir('lifeline-alive-');
    const db = await dbUrlFor('postgres', dir);
    const seen = path.join(dir, 'far');
    const hidden = path.join(dir, '.far-disk');
    const [peer, far] = await Promise.all([
      serve({ db, dataDir: path.join(dir, 'peer'), extra: SHORT, plans }),
      serve({ db, dataDir: seen, extra: SHORT, plans, wrap: elsewhere(hidden, seen) }),
    ]);
    const ids: Record<string, string> = {};
    for (const [name, plan] of [
      ['cancelme', 'long'],
      ['timeme', 'longtimeout'],
    ]) {
      expect((await call(far.url, 'POST', '/v1/deployments', { name, plan })).status).toBe(201);
      ids[name] = (await call(far.url, 'POST', `/v1/deployments/${name}/attempts`, {})).body.id;
    }
    for (const id of Object.values(ids))
      await waitFor(async () => (await attempt(peer, id)).state === 'running', 'running');

    await far.crash();
    for (const id of Object.values(ids))
      await waitFor(async () => (await attempt(peer, id)).state === 'unknown', 'unknown (runner_lost)');
    // Nobody can see its process now: a cancel is refused rather than recorded and never carried out.
    const refused = await call(peer.url, 'POST', '/v1/deployments/cancelme/cancel');
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('NO_INFLIGHT_ATTEMPT');

    // Back on its machine, the instance supervises both again while they stay unknown.
    const back = await serve({ db, dataDir: seen, extra: SHORT, plans, wrap: elsewhere(hidden, seen) });
    const accepted = await waitFor(async () => {
      const r = await call(peer.url, 'POST', '/v1/deployments/cancelme/cancel');
      return r.status === 202 ? r : null;
    }, 'cancel accepted through the peer once the owner supervises it');
    expect(accepted.body.cancel_requested_at).not.toBeNull();
    for (const [name, id] of Object.entries(ids)) {
      const ended = await waitFor(
        async () => {
          const a = await attempt(peer, id);
          return a.state !== 'unknown' ? a : null;
        },
        `${name} stopped and corrected by late_result`,
        60_000,
      );
      // From unknown a stopped attempt can only be failed (SPEC §2.2); its code is the signal's.
      expect(ended).toMatchObject({ state: 'failed', reason: 'late_result', recovered: true });
      expect(ended.rc).not.toBe(0);
      // Ended by the signal (ended_at comes from its exit record), long before its 120 s sleep.
      expect(Date.parse(ended.ended_at) - Date.parse(ended.started_at)).toBeLessThan(100_000);
      const dep = (await call(peer.url, 'GET', `/v1/deployments/${name}`)).body;
      expect(dep.state).toBe('failed');
    }
    const timed = await attempt(peer, ids.timeme);
    expect(timed.cancel_requested_at).toBeNull();
    await Promise.all([peer.stop(), back.stop()]);
  }, 420_000);

  it('same machine: a peer adopts the orphan of a SIGKILLed instance and it ends truthfully', async () => {
    const dir = tempDir('lifeline-near-');
    const db = await dbUrlFor('postgres', dir);
    const [peer, near] = await Promise.all([
      serve({ db, dataDir: path.join(dir, 'peer'), extra: SHORT, plans }),
      serve({ db, dataDir: path.join(dir, 'near'), extra: SHORT, plans }),
    ]);
    const created = await call(near.url, 'POST', '/v1/deployments', { name: 'near', plan: 'ctl' });
    expect(created.status).toBe(201);
    const id = (await call(near.url, 'POST', '/v1/deployments/near/attempts', {})).body.id as string;
    const started = await waitFor(async () => {
      const a = await attempt(peer, id);
      return a.state === 'running' ? a : null;
    }, 'running');
    await near.crash();
    const adopted = await waitFor(async () => {
      const a = await attempt(peer, id);
      return a.owner !== started.owner ? a : null;
    }, 'adoption by the peer');
    expect(adopted.state).toBe('running');
    // Told to exit 0 only now: it ends under the peer that adopted it.
    await tellCtl(path.join(dir, 'near'), created.body.id, 0);
    const done = await waitFor(
      async () => {
        const a = await attempt(peer, id);
        return a.state === 'succeeded' ? a : null;
      },
      'the adopted attempt ends',
      30_000,
    );
    expect(done).toMatchObject({ rc: 0, recovered: true });
    await peer.stop();
  }, 420_000);
});
