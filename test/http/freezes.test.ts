// Freezes made and lifted through the API (SPEC §13.2) on both stores: roles, bad input (nothing
// written), name clashes, and the list with whether each is in force on the database's clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/dialect.ts';
import { fixturePlans } from '../helpers/engine.ts';
import { bearer, expectProblem, harness, json, TOKEN_NAMES, type Harness } from './helpers.ts';

const admin = bearer('admin');
const HOUR = 3_600_000;
const inAnHour = () => new Date(Date.now() + HOUR).toISOString();

describe.each(DIALECTS)('freezes API on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      auth: true,
      dialect,
      extra: {
        plans: fixturePlans(),
        freezes: [
          {
            name: 'exam-week',
            match: { plans: ['ok'] },
            from: '2020-01-01T00:00:00Z',
            until: '2020-01-02T00:00:00Z',
          },
          {
            name: 'forever',
            match: { labels: { course: 'x' } },
            until: '2999-01-01T00:00:00Z',
            when: 'reject',
          },
        ],
      },
    });
  });
  afterAll(async () => h?.close());

  const rows = async () =>
    h.engine.store.db.selectFrom('freezes').selectAll().orderBy('created_at').orderBy('id').execute();
  const post = (payload: unknown, headers = admin) =>
    h.app.inject({ method: 'POST', url: '/v1/freezes', headers, payload: payload as object });

  it('lists the config file’s freezes with whether each is in force (viewer)', async () => {
    const res = await h.app.inject({ url: '/v1/freezes', headers: bearer('viewer') });
    expect(res.statusCode, res.body).toBe(200);
    expect(json(res).items).toEqual([
      {
        name: 'exam-week',
        source: 'config',
        match: { plans: ['ok'] },
        from: '2020-01-01T00:00:00.000Z',
        until: '2020-01-02T00:00:00.000Z',
        when: 'queue',
        in_force: false,
        reason: null,
        created_by: null,
        created_at: null,
      },
      expect.objectContaining({
        name: 'forever',
        source: 'config',
        when: 'reject',
        in_force: true,
        from: null,
      }),
    ]);
  });

  it('an admin freezes now (201) and lifts it (204); the row keeps who did both', async () => {
    const until = inAnHour();
    const res = await post({
      name: 'maint',
      match: { plans: ['ok'], kinds: ['teardown'] },
      until,
      reason: 'rack move',
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.headers.location).toBe('/v1/freezes/maint');
    const f = json(res);
    expect(f).toMatchObject({
      name: 'maint',
      source: 'api',
      match: { plans: ['ok'], kinds: ['teardown'] },
      until: new Date(until).toISOString(),
      when: 'queue',
      in_force: true,
      reason: 'rack move',
      created_by: TOKEN_NAMES.admin,
    });
    expect(Date.parse(f.from)).toBeLessThanOrEqual(Date.now() + 5_000);
    const listed = json(await h.app.inject({ url: '/v1/freezes', headers: admin })).items;
    expect(listed.map((x: { name: string }) => x.name)).toEqual(['exam-week', 'forever', 'maint']);

    const del = await h.app.inject({ method: 'DELETE', url: '/v1/freezes/maint', headers: admin });
    expect(del.statusCode, del.body).toBe(204);
    const after = json(await h.app.inject({ url: '/v1/freezes', headers: admin })).items;
    expect(after.map((x: { name: string }) => x.name)).toEqual(['exam-week', 'forever']);
    const row = (await rows()).find((r) => r.name === 'maint')!;
    expect(row.lifted_by).toBe(TOKEN_NAMES.admin);
    expect(row.lifted_at).not.toBeNull();
    // Lifted: the name is free again.
    const again = await post({ name: 'maint', until: inAnHour(), reason: 'again' });
    expect(again.statusCode, again.body).toBe(201);
    expect(
      (await h.app.inject({ method: 'DELETE', url: '/v1/freezes/maint', headers: admin })).statusCode,
    ).toBe(204);
  });

  it('a name in force, or one of the file’s: 409 FREEZE_EXISTS, nothing written', async () => {
    expect((await post({ name: 'twice', until: inAnHour(), reason: 'a' })).statusCode).toBe(201);
    const before = await rows();
    const p = expectProblem(
      await post({ name: 'twice', until: inAnHour(), reason: 'b' }),
      409,
      'FREEZE_EXISTS',
    );
    expect(p.detail).toContain('lift it first');
    expectProblem(await post({ name: 'exam-week', until: inAnHour(), reason: 'b' }), 409, 'FREEZE_EXISTS');
    expect(await rows()).toEqual(before);
    await h.app.inject({ method: 'DELETE', url: '/v1/freezes/twice', headers: admin });
  });

  it('two admins racing on one name: one 201, one 409, one row', async () => {
    const body = { name: 'race', until: inAnHour(), reason: 'x' };
    const codes = (await Promise.all([post(body), post(body), post(body)])).map((r) => r.statusCode).sort();
    expect(codes).toEqual([201, 409, 409]);
    expect((await rows()).filter((r) => r.name === 'race' && r.lifted_at === null)).toHaveLength(1);
    await h.app.inject({ method: 'DELETE', url: '/v1/freezes/race', headers: admin });
  });

  it('bad input: a clear 422 naming the field, nothing written', async () => {
    const before = await rows();
    const cases: [unknown, string][] = [
      [{ name: 'past', until: '2020-01-01T00:00:00Z', reason: 'x' }, 'until'],
      [{ name: 'nozone', until: '2999-01-01T00:00:00', reason: 'x' }, 'until'],
      [{ name: 'Bad Name', until: inAnHour(), reason: 'x' }, 'name'],
      [{ name: 'm', until: inAnHour(), reason: 'x', match: { plan: ['ok'] } }, 'match'],
      [{ name: 'm', until: inAnHour(), reason: 'x', match: { kinds: ['destroy'] } }, 'match.kinds.0'],
      [{ name: 'm', until: inAnHour(), reason: 'x'.repeat(5000) }, 'reason'],
      [{ name: 'm', until: inAnHour() }, 'reason'],
      [{ name: 'm', until: inAnHour(), reason: 'x', when: 'later' }, 'when'],
      [{ name: 'm', until: inAnHour(), reason: 'x', extra: 1 }, ''],
    ];
    for (const [body, field] of cases) {
      const res = await post(body);
      expect([400, 422], res.body).toContain(res.statusCode);
      const p = expectProblem(res, res.statusCode);
      if (field) expect(p.errors?.map((e) => e.field).join(' '), res.body).toContain(field);
    }
    expect(await rows()).toEqual(before);
  });

  it('roles: a viewer or operator may not freeze or lift (403); lifting the file’s: 409; unknown: 404', async () => {
    const before = await rows();
    expectProblem(
      await post({ name: 'v', until: inAnHour(), reason: 'x' }, bearer('viewer')),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await post({ name: 'o', until: inAnHour(), reason: 'x' }, bearer('operator')),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await h.app.inject({ method: 'DELETE', url: '/v1/freezes/forever', headers: bearer('operator') }),
      403,
      'FORBIDDEN',
    );
    const cfg = expectProblem(
      await h.app.inject({ method: 'DELETE', url: '/v1/freezes/forever', headers: admin }),
      409,
      'INVALID_TRANSITION',
    );
    expect(cfg.detail).toContain('config file');
    expectProblem(
      await h.app.inject({ method: 'DELETE', url: '/v1/freezes/nope', headers: admin }),
      404,
      'NOT_FOUND',
    );
    expect(await rows()).toEqual(before);
  });

  it('an API freeze that has ended shows in_force false, and its name may be taken again', async () => {
    // Made to end in the past directly in the store: the API refuses an `until` in the past.
    await h.engine.store.db
      .insertInto('freezes')
      .values({
        id: 'frz_old',
        name: 'old',
        match: '{}',
        from_at: '2020-01-01T00:00:00.000Z',
        until_at: '2020-01-02T00:00:00.000Z',
        reason: 'x',
        mode: 'queue',
        created_by: 'alice',
        created_at: '2020-01-01T00:00:00.000Z',
        lifted_at: null,
        lifted_by: null,
      })
      .execute();
    const listed = json(await h.app.inject({ url: '/v1/freezes', headers: admin })).items;
    expect(listed.find((f: { name: string }) => f.name === 'old')).toMatchObject({
      source: 'api',
      in_force: false,
    });
    expect((await post({ name: 'old', until: inAnHour(), reason: 'new' })).statusCode).toBe(201);
    const olds = (await rows()).filter((r) => r.name === 'old');
    expect(olds.map((r) => [r.id === 'frz_old', r.lifted_at !== null])).toEqual([
      [true, true],
      [false, false],
    ]);
  });
});
