// The range example (examples/stacks/range.yaml with the range-* plans of examples/lifeline.yaml, README
// "A stack: a small range") through a real server: created by `lifeline stack create -f`, deployed by a
// run through the API; the network publishes its vlan and subnet, each team builds its hosts from the
// network's outputs in LIFELINE_INPUTS, and the finalize unit sees the network and both teams.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { cli, ROOT, TestServer, waitFor } from '../cli/helpers.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const EXAMPLES = path.join(ROOT, 'examples');
const SPEC_FILE = path.join(EXAMPLES, 'stacks/range.yaml');

/** The example config's range-* plans, their relative paths resolved as `npm start` resolves them. */
function rangePlans(): Record<string, unknown> {
  const config = parse(fs.readFileSync(path.join(EXAMPLES, 'lifeline.yaml'), 'utf8')) as {
    plans: Record<string, Record<string, unknown>>;
  };
  const abs = (argv: string[]) => argv.map((a) => (a.startsWith('./') ? path.join(EXAMPLES, a) : a));
  const plans: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(config.plans)) {
    if (!name.startsWith('range-')) continue;
    plans[name] = {
      ...p,
      deploy: abs(p.deploy as string[]),
      teardown: abs(p.teardown as string[]),
      check: abs(p.check as string[]),
    };
  }
  return plans;
}

let server: TestServer;
beforeAll(async () => {
  server = await TestServer.start(rangePlans());
});
afterAll(async () => {
  await server?.stop();
});

async function runEnd(id: string): Promise<any> {
  return waitFor(
    async () => {
      const r = await server.api<any>('GET', `/v1/runs/${id}`);
      return ['queued', 'running'].includes(r.state) ? null : r;
    },
    `run ${id} to end`,
    90_000,
  );
}

describe('examples/stacks/range.yaml', () => {
  it('deploys the range in order and the finalize unit sees its inputs; tears it down', async () => {
    expect(Object.keys(rangePlans()).sort()).toEqual(['range-finalize', 'range-net', 'range-team']);
    const created = await cli(server, ['stack', 'create', '-f', SPEC_FILE]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('created stack range-1');

    const run = await server.api<any>('POST', '/v1/stacks/range-1/deploy', {});
    expect((await runEnd(run.id)).state).toBe('succeeded');

    const stack = await server.api<any>('GET', '/v1/stacks/range-1');
    expect(stack.state).toBe('ready');
    const out = Object.fromEntries(stack.units.map((u: any) => [u.deployment, u.outputs]));
    expect(out['range-1-net']).toEqual({ vlan: 107, subnet: '10.107.0.0/16', gateway: '10.107.0.1' });
    expect(out['range-1-team-1']).toEqual({ team: 1, hosts: ['10.107.1.10', '10.107.1.11'] });
    expect(out['range-1-team-2']).toEqual({ team: 2, hosts: ['10.107.2.10', '10.107.2.11'] });
    // What finalize published is what it read from LIFELINE_INPUTS: the network and both teams.
    expect(out['range-1-finalize']).toEqual({
      vlan: 107,
      teams: ['range-1-team-1', 'range-1-team-2'],
      hosts: ['10.107.1.10', '10.107.1.11', '10.107.2.10', '10.107.2.11'],
    });
    const fin = await server.api<any>('GET', '/v1/deployments/range-1-finalize');
    const inventory = JSON.parse(
      fs.readFileSync(path.join(server.dataDir, 'workspaces', fin.id, 'inventory.json'), 'utf8'),
    );
    expect(inventory).toEqual({
      net: { 'range-1-net': out['range-1-net'] },
      team: { 'range-1-team-1': out['range-1-team-1'], 'range-1-team-2': out['range-1-team-2'] },
    });

    const show = await cli(server, ['stack', 'show', 'range-1']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/^2 +range-1-finalize +ready/m);

    const down = await server.api<any>('POST', '/v1/stacks/range-1/teardown', { confirm: 'range-1' });
    expect((await runEnd(down.id)).state).toBe('succeeded');
    expect((await server.api<any>('GET', '/v1/stacks/range-1')).state).toBe('torn_down');
  });
});
