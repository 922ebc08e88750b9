// The plan's `concurrency: {key, limit, when_busy, queue_timeout}` (SPEC §13.1): the key template parsed
// at load, the limit bounded 1–1000, unknown keys named with a suggestion, and each problem on its line.
import { describe, expect, it } from 'vitest';
import { configFromObject, loadConfig } from '../../src/config/load.ts';
import { errorOf, tempDir } from './helpers.ts';

const plan = (concurrency: unknown) => ({
  plans: {
    vm: { deploy: ['./deploy.sh'], teardown: ['./teardown.sh'], concurrency },
  },
});
const load = (c: unknown) => configFromObject(plan(c), { file: null, baseDir: '/tmp', env: {} });

describe('plan concurrency config', () => {
  it('is absent by default: no limit', () => {
    const cfg = configFromObject(
      { plans: { vm: { deploy: ['./d'], teardown: ['./t'] } } },
      { file: null, baseDir: '/tmp', env: {} },
    );
    expect(cfg.plans.vm.concurrency).toBeNull();
  });

  it('parses the key into text and params, defaults when_busy to queue', () => {
    expect(load({ key: 'proxmox-${params.node}/${params.pool}', limit: 2 }).plans.vm.concurrency).toEqual({
      key: 'proxmox-${params.node}/${params.pool}',
      keyParts: [{ text: 'proxmox-' }, { param: 'node' }, { text: '/' }, { param: 'pool' }],
      limit: 2,
      whenBusy: 'queue',
      queueTimeoutMs: null,
    });
    expect(
      load({ key: 'shared', limit: 1000, when_busy: 'reject', queue_timeout: '5m' }).plans.vm.concurrency,
    ).toMatchObject({
      keyParts: [{ text: 'shared' }],
      limit: 1000,
      whenBusy: 'reject',
      queueTimeoutMs: 300_000,
    });
  });

  it.each([
    ['limit 0', { key: 'k', limit: 0 }, 'plans.vm.concurrency.limit: expected a whole number from 1 to 1000'],
    [
      'limit 1001',
      { key: 'k', limit: 1001 },
      'plans.vm.concurrency.limit: expected a whole number from 1 to 1000',
    ],
    [
      'limit 1.5',
      { key: 'k', limit: 1.5 },
      'plans.vm.concurrency.limit: expected a whole number from 1 to 1000',
    ],
    ['limit missing', { key: 'k' }, 'plans.vm.concurrency.limit'],
    ['key missing', { limit: 1 }, 'plans.vm.concurrency.key'],
    ['empty key', { key: '', limit: 1 }, 'plans.vm.concurrency.key: must not be empty'],
    ['unclosed', { key: 'a-${params.node', limit: 1 }, 'is never closed'],
    ['env', { key: 'a-${env.HOME}', limit: 1 }, 'only params can be used in a key'],
    ['bare $', { key: 'a$b', limit: 1 }, 'must start ${params.NAME}'],
    ['empty name', { key: '${params.}', limit: 1 }, 'only params can be used in a key'],
    [
      'when_busy',
      { key: 'k', limit: 1, when_busy: 'wait' },
      'plans.vm.concurrency.when_busy: expected queue or reject',
    ],
    ['queue_timeout', { key: 'k', limit: 1, queue_timeout: '0s' }, 'plans.vm.concurrency.queue_timeout'],
    ['not a mapping', 3, 'plans.vm.concurrency: expected a mapping like'],
  ])('refuses %s', (_what, c, message) => {
    expect(errorOf(() => load(c))).toContain(message);
  });

  it('suggests the key meant for an unknown one', () => {
    expect(errorOf(() => load({ key: 'k', limit: 1, whenbusy: 'queue' }))).toMatch(/whenbusy.*when_busy/s);
  });

  it('names the line of a malformed key in the file', () => {
    const t = tempDir();
    try {
      const file = t.write(
        'lifeline.yaml',
        [
          'plans:',
          '  vm:',
          '    deploy: ["./d"]',
          '    teardown: ["./t"]',
          '    concurrency:',
          '      limit: 2',
          '      key: "proxmox-${node}"',
          '',
        ].join('\n'),
      );
      const msg = errorOf(() => loadConfig({ file, env: {} }));
      expect(msg).toContain('lifeline.yaml:7');
      expect(msg).toContain('plans.vm.concurrency.key');
    } finally {
      t.cleanup();
    }
  });
});
