// The `webhooks:` config (SPEC §10): secrets read from the environment and kept out of any printout,
// clear errors for what is wrong, and the backoff's bounds.
import { describe, expect, it } from 'vitest';
import { ConfigError, configFromObject } from '../../src/config/load.ts';
import { backoffMs } from '../../src/lifecycle/webhooks/deliver.ts';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const load = (webhooks: unknown, env: NodeJS.ProcessEnv = { WH: SECRET }) =>
  configFromObject({ data_dir: '/tmp/x', plans: {}, webhooks }, { env });

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('webhooks config', () => {
  it('reads the secret from the environment and never shows it', () => {
    const c = load([{ name: 'chat', url: 'https://hooks.example.org/x', secret_env: 'WH' }]);
    expect(c.webhooks).toHaveLength(1);
    const w = c.webhooks[0];
    expect(w.secret).toBe(SECRET);
    expect(w.timeoutMs).toBe(10_000);
    expect(w.events).not.toContain('log_line');
    expect(w.events).toContain('state_transition');
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect(Object.keys(w)).not.toContain('secret');
  });

  it('takes events and timeout', () => {
    const c = load([
      { name: 'logs', url: 'http://127.0.0.1:9/h', secret_env: 'WH', events: ['log_line'], timeout: '2s' },
    ]);
    expect(c.webhooks[0]).toMatchObject({ events: ['log_line'], timeoutMs: 2000 });
  });

  it('refuses a bad shape, each problem with its path', () => {
    const msg = problems(() =>
      load([
        { name: 'a', url: 'ftp://x/y', secret_env: 'WH' },
        { name: 'd', url: 'https://x/y', secret_env: 'WH', events: ['nope'] },
      ]),
    );
    expect(msg).toMatch(/webhooks\[0\]\.url: expected an http:\/\/ or https:\/\/ URL/);
    expect(msg).toMatch(/webhooks\[1\]\.events\[0\]: expected event types/);
    // A pasted secret is an unknown key that points at secret_env.
    expect(
      problems(() => load([{ name: 'e', url: 'https://x/y', secret_env: 'WH', secret: SECRET }])),
    ).toMatch(/webhooks\[0\]\.secret: unknown key \(did you mean secret_env\?\)/);
  });

  it('refuses credentials in a URL without ever quoting them', () => {
    for (const url of ['https://alice:hunter2pw@hooks.example.org/x', 'http://hunter2pw@127.0.0.1:9/h']) {
      const msg = problems(() => load([{ name: 'creds', url, secret_env: 'WH' }]));
      expect(msg).toMatch(/webhooks\[0\]\.url: must not contain credentials/);
      expect(msg).not.toContain('hunter2pw');
    }
  });

  it('refuses missing or malformed secrets and duplicate names, never quoting a secret', () => {
    const msg = problems(() =>
      load(
        [
          { name: 'b', url: 'https://x/y', secret_env: 'MISSING' },
          { name: 'c', url: 'https://x/y', secret_env: 'BAD' },
          { name: 'f', url: 'https://x/y', secret_env: 'WH' },
          { name: 'f', url: 'https://x/y', secret_env: 'WH' },
        ],
        { WH: SECRET, BAD: 'not-a-whsec-secret' },
      ),
    );
    expect(msg).toMatch(/webhooks\[0\]\.secret_env: .*MISSING is not set/);
    expect(msg).toMatch(/webhooks\[1\]\.secret_env: .*whsec_/);
    expect(msg).toMatch(/webhooks\[3\]\.name: duplicate webhook name "f"/);
    expect(msg).not.toContain(SECRET);
    expect(msg).not.toContain('not-a-whsec-secret');
  });
});

describe('webhook backoff', () => {
  it('is full jitter: 0 up to 1 s doubling per failure, capped at 1 h', () => {
    expect(backoffMs(1, () => 0.999)).toBe(999);
    expect(backoffMs(2, () => 0.999)).toBe(1998);
    expect(backoffMs(5, () => 0.5)).toBe(8000);
    expect(backoffMs(13, () => 0.999)).toBe(3_596_400);
    expect(backoffMs(100, () => 0.999)).toBe(3_596_400);
    expect(backoffMs(3, () => 0)).toBe(0);
  });
});
