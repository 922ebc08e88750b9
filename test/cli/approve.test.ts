// `lifeline approve|reject ATTEMPT --reason` against a real server with two tokens (SPEC §13.3).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, cliPlans, startCli, TestServer, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const ANN = 'approve-test-ann-0123456789';
const BEN = 'approve-test-ben-0123456789';
const sha = (t: string) => createHash('sha256').update(t).digest('hex');
let server: TestServer;

beforeAll(async () => {
  const plans = cliPlans() as Record<string, Record<string, unknown>>;
  server = await TestServer.start(
    { ...plans, gated: { ...plans.ok, approval: { deploy: true } } },
    {
      auth: {
        tokens: [
          { name: 'ann', role: 'operator', token_sha256: sha(ANN) },
          { name: 'ben', role: 'operator', token_sha256: sha(BEN) },
        ],
      },
    },
  );
});
afterAll(async () => server?.stop());

const as = (token: string, args: string[]) => cli(server, args, { LIFELINE_TOKEN: token });

async function waitingAttempt(name: string): Promise<string> {
  expect((await as(ANN, ['create', name, '--plan', 'gated'])).code).toBe(0);
  const started = await as(ANN, ['deploy', name, '--json']);
  expect(started.code, started.stderr).toBe(0);
  const id = JSON.parse(started.stdout).id as string;
  // Waited for through the API (a `lifeline` process per poll cost a second of CPU each), then shown once.
  await waitFor(async () => {
    const a = await server.api<{ waiting: unknown[] }>('GET', `/v1/attempts/${id}`, undefined, ANN);
    return a.waiting.length > 0;
  }, 'the attempt to wait for approval');
  const shown = await as(ANN, ['show', name, '--json']);
  expect(JSON.parse(shown.stdout).attempts?.[0]?.waiting?.length).toBeGreaterThan(0);
  return id;
}

describe('lifeline approve / reject', () => {
  it('the requester is refused (exit 2, the server’s reason); another operator approves', async () => {
    const id = await waitingAttempt('web-a');
    const self = await as(ANN, ['approve', id, '--reason', 'mine']);
    expect(self.code).toBe(2);
    expect(self.stderr).toMatch(/^error: FORBIDDEN: "ann" requested this attempt and may not approve it/);
    const ok = await as(BEN, ['approve', id, '--reason', 'ticket 7']);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^approved deploy attempt #1 \\(${id}\\)`));
    await waitFor(
      async () =>
        (await server.api<{ state: string }>('GET', '/v1/deployments/web-a', undefined, ANN)).state ===
        'ready',
      'web-a to be ready',
    );
    expect(JSON.parse((await as(ANN, ['show', 'web-a', '--json'])).stdout).state).toBe('ready');
    const again = await as(BEN, ['approve', id, '--reason', 'x']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^error: ATTEMPT_TERMINAL: /);
  });

  it('deploy --follow says live that it waits for an approval, who may give it, and who gave it', async () => {
    expect((await as(ANN, ['create', 'web-f', '--plan', 'gated'])).code).toBe(0);
    const follow = startCli(server, ['deploy', 'web-f', '--follow'], { LIFELINE_TOKEN: ANN });
    await follow.waitForOutput(/waiting for approval by an operator or admin other than ann\n/);
    const id = /approve with: lifeline approve (att_\S+) --reason/.exec(follow.stdout)?.[1];
    expect(id, follow.stdout).toBeDefined();
    expect((await as(BEN, ['approve', id!, '--reason', 'ticket 9'])).code).toBe(0);
    const r = await follow.done;
    expect(r.code, r.stderr).toBe(0);
    const lines = [
      'waiting for approval by an operator or admin other than ann',
      'approved by ben: ticket 9',
      'approval gate opened after',
      'queued → running',
    ].map((l) => r.stdout.indexOf(l));
    expect(
      lines.every((i) => i >= 0),
      r.stdout,
    ).toBe(true);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
  });

  it('reject cancels it; --json prints the attempt; --reason is required', async () => {
    const id = await waitingAttempt('web-r');
    const missing = await as(BEN, ['reject', id]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--reason <text>' not specified");
    const r = await as(BEN, ['reject', id, '--reason', 'not now', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id, state: 'cancelled', reason: 'rejected' });
  });
});
