// Freezes across instances (SPEC §13.2) on one Postgres database: a freeze made on one instance holds
// attempts accepted on another, and its lift there opens them all; a scheduled freeze's end opens the
// attempts every instance accepted, each launched once, with no request at all.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import {
  ADMIN,
  dbUrlFor,
  FIXTURES,
  fixturePlans,
  OPERATOR,
  quietLogger,
  tempDir,
  testConfig,
  waitFor,
} from '../helpers/engine.ts';

const open: Lifeline[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close().catch(() => undefined);
});

const plans = {
  ...fixturePlans(),
  vm: { deploy: [path.join(FIXTURES, 'ok.sh')], teardown: [path.join(FIXTURES, 'ok.sh')] },
};

async function engine(db: string, extra: Record<string, unknown> = {}): Promise<Lifeline> {
  // A long reconcile interval: what opens the attempts is the lift and the timer, not the safety pass.
  const config = testConfig(tempDir(), { plans, reap_interval: '60s', ...extra }, db);
  const e = await openLifeline({ config, logger: quietLogger() });
  await e.start();
  open.push(e);
  return e;
}

async function starts(e: Lifeline, ids: string[]): Promise<Map<string, number>> {
  const rows = await e.store.db
    .selectFrom('events')
    .select(['attempt_id'])
    .where('type', '=', 'attempt_start')
    .where('attempt_id', 'in', ids)
    .execute();
  const n = new Map<string, number>();
  for (const r of rows) n.set(r.attempt_id!, (n.get(r.attempt_id!) ?? 0) + 1);
  return n;
}

describe('freezes across instances (postgres)', () => {
  it('a freeze made on A holds what B accepts; lifting it on A opens them all, once each', async () => {
    const db = await dbUrlFor('postgres', tempDir());
    const [a, b] = [await engine(db), await engine(db)];
    await a.createFreeze(
      { name: 'f', until: new Date(Date.now() + 3_600_000).toISOString(), reason: 'x' },
      ADMIN,
    );
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      await a.createDeployment({ name: `vm-${i}`, plan: 'vm' }, OPERATOR);
      const att = await (i % 2 ? a : b).startDeploy(`vm-${i}`, {}, OPERATOR);
      expect(att.waiting.map((w) => w.gate)).toEqual(['freeze']);
      ids.push(att.id);
    }
    await a.deleteFreeze('f', ADMIN);
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await b.getAttempt(id)).state));
      return states.every((s) => s === 'succeeded');
    }, 'every attempt to succeed after the lift');
    expect([...(await starts(a, ids)).values()]).toEqual(ids.map(() => 1));
  });

  it('a scheduled freeze that ends opens what both instances accepted, with no request', async () => {
    const db = await dbUrlFor('postgres', tempDir());
    const until = new Date(Date.now() + 4_000).toISOString();
    const freezes = [{ name: 'window', match: { plans: ['vm'] }, until }];
    const [a, b] = [await engine(db, { freezes }), await engine(db, { freezes })];
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      await a.createDeployment({ name: `w-${i}`, plan: 'vm' }, OPERATOR);
      const att = await (i % 2 ? a : b).startDeploy(`w-${i}`, {}, OPERATOR);
      expect(att.waiting).toEqual([
        {
          gate: 'freeze',
          detail: { freeze: 'window', until: new Date(until).toISOString() },
          since: expect.any(String),
        },
      ]);
      ids.push(att.id);
    }
    const done = await waitFor(async () => {
      const atts = await Promise.all(ids.map((id) => a.getAttempt(id)));
      return atts.every((x) => x.state === 'succeeded') ? atts : null;
    }, 'every attempt to succeed after the freeze ends');
    for (const x of done) expect(Date.parse(x.started_at!)).toBeGreaterThanOrEqual(Date.parse(until));
    expect([...(await starts(a, ids)).values()]).toEqual(ids.map(() => 1));
  });
});
