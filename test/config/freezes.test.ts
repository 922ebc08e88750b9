import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromObject, loadConfig } from '../../src/config/load.ts';
import { errorOf, tempDir } from './helpers.ts';

const PLAN = { deploy: ['./d.sh'], teardown: ['./t.sh'] };
const AUTH = { tokens: [{ name: 'ci', role: 'operator', token_sha256: 'a'.repeat(64) }] };

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

describe('config: freezes (SPEC §13.2)', () => {
  it('reads the SPEC example: match, from, until, when', () => {
    const file = tmp.write(
      'lifeline.yaml',
      [
        'plans:',
        '  vm: { deploy: ["./d.sh"], teardown: ["./t.sh"] }',
        'freezes:',
        '  - name: exam-week',
        '    match: { plans: [vm, sdn], labels: { course: sec-101 } }',
        '    from: 2026-12-14T08:00:00Z',
        '    until: 2026-12-18T18:00:00Z',
        '    when: queue',
        '  - name: everything',
        '    until: 2026-12-20T00:00:00+01:00',
        '',
      ].join('\n'),
    );
    const c = loadConfig({ file, env: {} });
    expect(c.freezes).toEqual([
      {
        name: 'exam-week',
        match: { plans: ['vm', 'sdn'], labels: { course: 'sec-101' } },
        fromMs: Date.parse('2026-12-14T08:00:00Z'),
        untilMs: Date.parse('2026-12-18T18:00:00Z'),
        when: 'queue',
        source: 'config',
      },
      {
        name: 'everything',
        match: {},
        fromMs: null,
        untilMs: Date.parse('2026-12-19T23:00:00Z'),
        when: 'queue',
        source: 'config',
      },
    ]);
  });

  it('is [] when absent', () => {
    expect(configFromObject({ plans: { vm: PLAN } }).freezes).toEqual([]);
  });

  it('refuses until before (or at) from, times without a zone, unknown keys, bad when, duplicate names — with lines', () => {
    const file = tmp.write(
      'bad.yaml',
      [
        'plans:',
        '  vm: { deploy: ["./d.sh"], teardown: ["./t.sh"] }',
        'freezes:',
        '  - name: backwards',
        '    from: 2026-12-18T18:00:00Z',
        '    until: 2026-12-14T08:00:00Z',
        '  - name: nozone',
        '    until: 2026-12-14T08:00:00',
        '  - name: typo',
        '    untill: 2026-12-14T08:00:00Z',
        '    until: 2026-12-14T08:00:00Z',
        '  - name: how',
        '    until: 2026-12-14T08:00:00Z',
        '    when: later',
        '  - name: how',
        '    until: 2026-12-14T08:00:00Z',
        '  - name: matcher',
        '    until: 2026-12-14T08:00:00Z',
        '    match: { plan: [vm] }',
        '',
      ].join('\n'),
    );
    expect(errorOf(() => loadConfig({ file, env: {} })).split('\n')).toEqual([
      `${file}:6: freezes[0].until: must be after from`,
      `${file}:8: freezes[1].until: expected a time with its zone, like 2026-12-14T08:00:00Z`,
      `${file}:10: freezes[2].untill: unknown key (did you mean until?)`,
      `${file}:14: freezes[3].when: expected queue or reject`,
      `${file}:19: freezes[5].match.plan: unknown key (did you mean plans?)`,
    ]);
  });

  it('refuses a name given twice (once the rest is valid)', () => {
    const f = { until: '2026-12-14T08:00:00Z' };
    expect(
      errorOf(() =>
        configFromObject({
          plans: { vm: PLAN },
          freezes: [
            { name: 'a', ...f },
            { name: 'a', ...f },
          ],
        }),
      ),
    ).toContain('freezes[1].name: duplicate freeze name "a"');
  });

  it('refuses an empty plans list and a bad kind', () => {
    const msg = errorOf(() =>
      configFromObject({
        plans: { vm: PLAN },
        freezes: [{ name: 'a', until: '2026-12-14T08:00:00Z', match: { plans: [], kinds: ['destroy'] } }],
      }),
    );
    expect(msg).toContain('freezes[0].match.plans: list at least one plan');
    expect(msg).toContain('freezes[0].match.kinds[0]: expected deploy or teardown');
  });
});

describe('config: a plan’s approval (SPEC §13.3)', () => {
  it('reads deploy, teardown, role and expires; null when absent', () => {
    const c = configFromObject({
      auth: AUTH,
      plans: {
        vm: { ...PLAN, approval: { deploy: true, teardown: true, role: 'operator', expires: '24h' } },
        prod: { ...PLAN, approval: { deploy: true } },
        free: PLAN,
      },
    });
    expect(c.plans.vm.approval).toEqual({
      deploy: true,
      teardown: true,
      role: 'operator',
      expiresMs: 86_400_000,
    });
    expect(c.plans.prod.approval).toEqual({
      deploy: true,
      teardown: false,
      role: 'operator',
      expiresMs: null,
    });
    expect(c.plans.free.approval).toBeNull();
  });

  it('refuses a viewer role, an approval that approves nothing, a bad expires and unknown keys — with lines', () => {
    const file = tmp.write(
      'bad.yaml',
      [
        'auth:',
        '  tokens: [{ name: ci, role: operator, token_sha256: "' + 'a'.repeat(64) + '" }]',
        'plans:',
        '  a:',
        '    deploy: ["./d.sh"]',
        '    teardown: ["./t.sh"]',
        '    approval: { deploy: true, role: viewer }',
        '  b:',
        '    deploy: ["./d.sh"]',
        '    teardown: ["./t.sh"]',
        '    approval: { deploy: false }',
        '  c:',
        '    deploy: ["./d.sh"]',
        '    teardown: ["./t.sh"]',
        '    approval: { deploy: true, expires: soon }',
        '  d:',
        '    deploy: ["./d.sh"]',
        '    teardown: ["./t.sh"]',
        '    approval: { deploy: true, expire: 1h }',
        '',
      ].join('\n'),
    );
    expect(errorOf(() => loadConfig({ file, env: {} })).split('\n')).toEqual([
      `${file}:7: plans.a.approval.role: expected operator or admin (a viewer may not approve anything)`,
      `${file}:11: plans.b.approval: set deploy: true and/or teardown: true (or remove approval)`,
      `${file}:15: plans.c.approval.expires: expected a duration like 30s, 10m or 1h`,
      `${file}:19: plans.d.approval.expire: unknown key (did you mean expires?)`,
    ]);
  });

  it('needs auth: without tokens nobody but the requester could answer', () => {
    expect(
      errorOf(() => configFromObject({ plans: { vm: { ...PLAN, approval: { deploy: true } } } })),
    ).toContain('plans.vm.approval: needs auth');
  });
});
