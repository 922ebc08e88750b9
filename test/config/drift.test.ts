// A plan's `check_every` and `self_heal` (SPEC §14.2): read as a duration and a boolean; a schedule
// without a check, a self-heal without its retry bound, and misspelt keys are errors with the line.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configFromObject, loadConfig } from '../../src/config/load.ts';
import { errorOf, tempDir } from './helpers.ts';

const base = { deploy: ['./deploy.sh'], teardown: ['./teardown.sh'] };
const load = (plan: Record<string, unknown>) =>
  configFromObject({ plans: { demo: { ...base, ...plan } } }, { file: null, baseDir: '/tmp', env: {} });

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => {
  tmp.cleanup();
});

describe('plan check_every and self_heal', () => {
  it('are off by default', () => {
    expect(load({}).plans.demo).toMatchObject({ checkEveryMs: null, selfHeal: false });
    expect(load({ check: ['./c.sh'] }).plans.demo).toMatchObject({ checkEveryMs: null, selfHeal: false });
  });

  it('read a duration and a boolean', () => {
    const p = load({
      check: ['./c.sh'],
      check_every: '15m',
      self_heal: true,
      retry: { max: 3, backoff: '30s' },
    });
    expect(p.plans.demo).toMatchObject({ checkEveryMs: 900_000, selfHeal: true });
  });

  it.each([
    ['check_every without a check', { check_every: '1m' }, 'plans.demo.check_every: needs a check'],
    [
      'check_every not a duration',
      { check: ['./c.sh'], check_every: 'often' },
      'plans.demo.check_every: expected a duration',
    ],
    [
      'check_every below 1s',
      { check: ['./c.sh'], check_every: '500ms' },
      'plans.demo.check_every: must be at least 1s',
    ],
    [
      'self_heal not a boolean',
      { check: ['./c.sh'], self_heal: 'yes' },
      'plans.demo.self_heal: expected true or false',
    ],
    ['self_heal without retry', { check: ['./c.sh'], self_heal: true }, 'plans.demo.self_heal: needs retry'],
    [
      'misspelt check_every',
      { check: ['./c.sh'], check_evry: '1m' },
      'plans.demo.check_evry: unknown key (did you mean check_every?)',
    ],
    [
      'misspelt self_heal',
      { check: ['./c.sh'], selfheal: true },
      'plans.demo.selfheal: unknown key (did you mean self_heal?)',
    ],
  ])('%s is an error naming the field', (_what, plan, message) => {
    expect(errorOf(() => load(plan))).toContain(message);
  });

  it('names the line of the key in the file', () => {
    const file = tmp.write(
      'drift.yaml',
      [
        'plans:',
        '  demo:',
        '    deploy: ["./d.sh"]',
        '    teardown: ["./t.sh"]',
        '    check_every: 5m',
        '',
      ].join('\n'),
    );
    expect(errorOf(() => loadConfig({ file, env: {} }))).toContain(
      `${file}:5: plans.demo.check_every: needs a check`,
    );
  });
});
