// A SIGKILL inside an idempotent request (issue 9 item 9): key, write and response are one durable unit,
// so a retry after the crash either replays the committed response or runs the write once — never a
// 409 "still being processed", never two attempts. Real `lifeline serve` children, killed by a
// test-only crash point just before or just after the write commits.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TestServer, waitFor } from '../cli/helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;

beforeAll(async () => {
  // A short start deadline: an attempt committed but never launched is ended by recovery soon. This
  // suite proves durability: commits as production makes them (synchronous=FULL).
  server = await TestServer.start(undefined, { start_deadline: '2s', durable_commits: true });
});

afterAll(async () => {
  await server?.stop();
});

async function send(method: string, p: string, key: string, body?: unknown) {
  const res = await fetch(`${server.url}${p}`, {
    method,
    headers: {
      'idempotency-key': key,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : null,
  };
}

/** Sends the request to a server that dies at `at`, waits for it to die, and boots it again. */
async function crashDuring(
  at: 'before_commit' | 'after_commit',
  method: string,
  p: string,
  key: string,
  body?: unknown,
) {
  await server.stop('SIGTERM');
  server.env = { LIFELINE_TEST_CRASH_AT: at };
  await server.boot();
  const proc = server.proc!;
  const died = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_c, sig) => resolve(sig)));
  await expect(send(method, p, key, body)).rejects.toThrow();
  expect(await died).toBe('SIGKILL');
  await server.stop();
  server.env = {};
  await server.boot();
}

const attempts = async (name: string) =>
  (await server.api<{ items: { id: string }[] }>('GET', `/v1/deployments/${name}/attempts`)).items;

describe('an idempotent write survives a SIGKILL of the server', () => {
  for (const at of ['after_commit', 'before_commit'] as const) {
    it(`deploy, killed ${at.replace('_', ' ')}: the retry answers 202 and there is one attempt`, async () => {
      const name = `crash-deploy-${at.replace('_', '-')}`;
      await server.api('POST', '/v1/deployments', { name, plan: 'ok' });
      await crashDuring(at, 'POST', `/v1/deployments/${name}/attempts`, `k-${name}`, {});
      const retry = await send('POST', `/v1/deployments/${name}/attempts`, `k-${name}`, {});
      expect(retry.status, JSON.stringify(retry.body)).toBe(202);
      const list = await attempts(name);
      expect(list).toHaveLength(1);
      expect(retry.body?.id).toBe(list[0].id);
      expect(retry.headers.get('location')).toBe(`/v1/attempts/${list[0].id}`);
      // after_commit: the write committed, so the retry replays it; before_commit: it runs once now.
      expect(retry.headers.get('idempotent-replayed')).toBe(at === 'after_commit' ? 'true' : null);
      const again = await send('POST', `/v1/deployments/${name}/attempts`, `k-${name}`, {});
      expect(again.status).toBe(202);
      expect(again.body?.id).toBe(list[0].id);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      // The committed attempt ends exactly once: launched by the retry (before commit) or, when the
      // server died before launching it, ended by recovery's start deadline; no second attempt appears.
      const ended = await waitFor(
        async () => {
          const a = await server.api<{ state: string; ended_at: string | null }>(
            'GET',
            `/v1/attempts/${list[0].id}`,
          );
          return a.ended_at !== null ? a : null;
        },
        'the attempt to end',
        120_000,
      );
      if (at === 'before_commit') expect(ended.state).toBe('succeeded');
      expect(await attempts(name)).toHaveLength(1);
    });

    it(`delete, killed ${at.replace('_', ' ')}: the retry answers 204`, async () => {
      const name = `crash-del-${at.replace('_', '-')}`;
      await server.api('POST', '/v1/deployments', { name, plan: 'ok' });
      await crashDuring(at, 'DELETE', `/v1/deployments/${name}`, `k-${name}`);
      const retry = await send('DELETE', `/v1/deployments/${name}`, `k-${name}`);
      expect(retry.status, JSON.stringify(retry.body)).toBe(204);
      expect(retry.headers.get('idempotent-replayed')).toBe(at === 'after_commit' ? 'true' : null);
      const gone = await fetch(`${server.url}/v1/deployments/${name}`);
      expect(gone.status).toBe(404);
    });
  }
});
