#!/usr/bin/env node
// The last pass: reads the network and every team's hosts from its inputs, "configures" them, and
// publishes what it saw, so that the stack's view shows the whole range in one place.
import fs from 'node:fs';
import path from 'node:path';
import { event, inputs, main, work } from './lib.mjs';

await main({
  up: async () => {
    const seen = inputs();
    const net = Object.values(seen.net ?? {})[0] ?? {};
    const teams = Object.entries(seen.team ?? {}).map(([deployment, o]) => ({
      deployment,
      hosts: o.hosts ?? [],
    }));
    await work([
      `inputs: vlan ${net.vlan}, ${teams.length} team(s)`,
      ...teams.map((t) => `configuring ${t.deployment}: ${t.hosts.join(', ')}`),
      'range ready',
    ]);
    fs.writeFileSync(
      path.join(process.env.LIFELINE_WORKSPACE, 'inventory.json'),
      JSON.stringify(seen, null, 2),
    );
    const hosts = teams.flatMap((t) => t.hosts);
    event({ output: { vlan: net.vlan ?? null, teams: teams.map((t) => t.deployment), hosts } });
  },
  down: () => work(['unconfiguring the range']),
});
