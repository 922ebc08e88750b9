// `lifeline show` lists the phases of the current attempt, or of --attempt N, from a real plan's runner events.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, ROOT, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;
const plan = (f: string) => [path.join(ROOT, 'test/fixtures/plans', f)];

beforeAll(async () => {
  server = await TestServer.start({
    events: { deploy: plan('events.sh'), teardown: plan('ok.sh') },
  });
});
afterAll(async () => {
  await server?.stop();
});

describe('lifeline show: phases', () => {
  it('prints a row per phase with its duration, for the current attempt or --attempt N', async () => {
    expect((await cli(server, ['create', 'ph-1', '--plan', 'events'])).code).toBe(0);
    expect((await cli(server, ['deploy', 'ph-1', '--follow'])).code).toBe(0);
    expect((await cli(server, ['teardown', 'ph-1', '--confirm', 'ph-1', '--follow'])).code).toBe(0);

    // The current attempt is the teardown (ok.sh): no phases, so no section.
    const cur = await cli(server, ['show', 'ph-1']);
    expect(cur.code).toBe(0);
    expect(cur.stdout).not.toMatch(/^Phases/m);

    const r = await cli(server, ['show', 'ph-1', '--attempt', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Phases of attempt #1$/m);
    expect(r.stdout).toMatch(/^ {2}PHASE +STARTED +TOOK$/m);
    expect(r.stdout).toMatch(/^ {2}plan +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+\.\ds$/m);
    expect(r.stdout).toMatch(/^ {2}apply +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+\.\ds$/m);

    const j = JSON.parse((await cli(server, ['show', 'ph-1', '--attempt', '1', '--json'])).stdout);
    expect(j.phases.map((p: { phase: string }) => p.phase)).toEqual(['plan', 'apply']);
    for (const p of j.phases) expect(p.duration_ms).toEqual(expect.any(Number));

    const none = await cli(server, ['show', 'ph-1', '--attempt', '9']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/no attempt #9/);
  });
});
