// followRun (src/cli/client/run-follow.ts) against a fake API and a tiny SSE server: a run already over
// exits at once with its code without opening the stream; on a terminal the table is redrawn in place.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { makeOut } from '../../src/cli/client/action.ts';
import type { ApiClient } from '../../src/cli/client/api.ts';
import { followRun, runExitCode } from '../../src/cli/client/run-follow.ts';
import type { Run } from '../../src/domain/stack-run.ts';
import type { Stack } from '../../src/domain/stack-types.ts';

const T = '2026-12-07T05:00:00.000Z';

function makeRun(state: Run['state'], step: 'launched' | 'succeeded' | 'failed'): Run {
  return {
    id: 'run_1',
    stack_id: 'stk_1',
    stack: 's',
    kind: 'deploy',
    state,
    version: 1,
    on_failure: 'stop',
    options: {},
    actor: 'anonymous',
    reason: null,
    cancel_requested_at: null,
    steps: [
      { key: 'net', index: null, deployment_id: 'dep_1', deployment: 's-net', step, attempt_id: 'att_1' },
    ],
    created_at: T,
    updated_at: T,
    ended_at: null,
  };
}

function makeStack(state: 'deploying' | 'ready' | 'failed', attempt: string): Stack {
  return {
    units: [
      {
        key: 'net',
        index: null,
        deployment: 's-net',
        deployment_id: 'dep_1',
        state,
        current_attempt: { id: 'att_1', number: 1, kind: 'deploy', state: attempt },
        outputs: {},
        depth: 0,
        after: [],
      },
    ],
  } as unknown as Stack;
}

function capture(isTTY: boolean) {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  }) as unknown as NodeJS.WriteStream;
  stream.isTTY = isTTY;
  stream.columns = 120;
  return { stream, text: () => text };
}

let server: http.Server | null = null;
afterEach(() => {
  server?.close();
  server = null;
});

describe('followRun', () => {
  it('maps the run end to 0, 1, 3', () => {
    expect(runExitCode('succeeded')).toBe(0);
    expect(runExitCode('failed')).toBe(1);
    expect(runExitCode('cancelled')).toBe(1);
    expect(runExitCode('unknown')).toBe(3);
  });

  it('a run already over when it attaches: its table and code at once, no stream opened', async () => {
    const out = capture(false);
    let streamed = false;
    const api = {
      getRun: async () => makeRun('failed', 'failed'),
      getStack: async () => makeStack('failed', 'failed'),
      events: async () => {
        streamed = true;
        throw new Error('no stream for an ended run');
      },
    } as unknown as ApiClient;
    const code = await followRun({
      api,
      o: makeOut(out.stream, out.stream, {}),
      run: makeRun('running', 'launched'),
    });
    expect(code).toBe(1);
    expect(streamed).toBe(false);
    expect(out.text()).toMatch(/^net\s+s-net\s+failed\s+failed\s+#1 deploy failed$/m);
    expect(out.text()).toMatch(/^result: failed {2}run=run_1 {2}units: 1 failed$/m);
  });

  it('on a terminal, redraws the table in place from the stream with stack=, then exits 0', async () => {
    let ended = false;
    let query = '';
    server = http.createServer((req, res) => {
      query = req.url ?? '';
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ev = (seq: number, data: Record<string, unknown>) =>
        `id: ${seq}\ndata: ${JSON.stringify({ seq, type: 'state_transition', at: T, data })}\n\n`;
      ended = true;
      res.end(
        ev(5, { entity: 'deployment', to: 'ready' }) + ev(6, { entity: 'run', id: 'run_1', to: 'succeeded' }),
      );
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const out = capture(true);
    const api = {
      baseUrl: base,
      url: (p: string, q: Record<string, string | undefined>) => {
        const u = new URL(p, base);
        for (const [k, v] of Object.entries(q)) if (v !== undefined) u.searchParams.set(k, v);
        return u.toString();
      },
      headers: (h: Record<string, string>) => ({ ...h }),
      getRun: async () => (ended ? makeRun('succeeded', 'succeeded') : makeRun('running', 'launched')),
      getStack: async () => (ended ? makeStack('ready', 'succeeded') : makeStack('deploying', 'running')),
      events: async () => ({
        items: [{ seq: 4, type: 'state_transition', data: { entity: 'run', id: 'run_1', to: 'queued' } }],
        next_after: 4,
      }),
    } as unknown as ApiClient;
    const code = await followRun({
      api,
      o: makeOut(out.stream, out.stream, {}),
      run: makeRun('queued', 'launched'),
    });
    expect(code).toBe(0);
    expect(query).toMatch(/[?&]stack=stk_1(&|$)/);
    expect(query).toMatch(/[?&]after=3(&|$)/);
    const text = out.text();
    // First drawing: 3 lines (head, table header, one unit); later ones go back up 3 lines and rewrite.
    expect(text).toContain('\x1b[3F');
    expect(text).toMatch(/s-net.*deploying.*launched.*#1 deploy running/);
    expect(text).toMatch(/s-net.*ready.*succeeded.*#1 deploy succeeded/);
    expect(text).toMatch(/result: .*succeeded.* {2}run=run_1/);
  });
});
