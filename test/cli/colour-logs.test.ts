// A plan's colours: the API keeps the bytes as written; `lifeline logs` and `deploy --follow` strip them
// when piped or with NO_COLOR, so files and pipes get plain text.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, ROOT, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;
const plan = (f: string) => [path.join(ROOT, 'test/fixtures/plans', f)];
const ESC = /\x1b/;

beforeAll(async () => {
  server = await TestServer.start({ colour: { deploy: plan('colour.sh'), teardown: plan('ok.sh') } });
});
afterAll(async () => {
  await server?.stop();
});

describe('coloured plan output', () => {
  it('is kept by the API and stripped by the CLI when piped', async () => {
    expect((await cli(server, ['create', 'c-1', '--plan', 'colour'])).code).toBe(0);
    const f = await cli(server, ['deploy', 'c-1', '--follow']);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toContain('ok: [localhost]');
    expect(f.stdout).not.toMatch(ESC);

    const dep = await server.api<any>('GET', '/v1/deployments/c-1');
    const raw = await fetch(`${server.url}/v1/attempts/${dep.current_attempt.id}/log`).then((r) => r.text());
    expect(raw).toContain('\x1b[0;32mok: [localhost]\x1b[0m');

    const logs = await cli(server, ['logs', 'c-1']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toBe('ok: [localhost]\n<img src=x onerror=alert(1)> done\n');

    const noColor = await cli(server, ['logs', 'c-1'], { NO_COLOR: '1' });
    expect(noColor.stdout).not.toMatch(ESC);
  });
});
