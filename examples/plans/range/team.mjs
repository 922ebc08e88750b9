#!/usr/bin/env node
// One team's machines: reads the network's subnet from its inputs, takes the index-th /24 of it and
// publishes its hosts (kept in the workspace too, for the teardown).
import fs from 'node:fs';
import path from 'node:path';
import { event, index, inputs, main, params, work } from './lib.mjs';

const saved = path.join(process.env.LIFELINE_WORKSPACE, 'hosts.json');

await main({
  up: async () => {
    const net = Object.values(inputs().net ?? {})[0];
    if (!net?.subnet) throw new Error('no network in LIFELINE_INPUTS: this unit must come after `net`');
    const prefix = net.subnet.split('.').slice(0, 2).join('.');
    const hosts = Array.from({ length: params.hosts ?? 2 }, (_, i) => `${prefix}.${index}.${10 + i}`);
    await work([
      `team ${index}: cloning ${hosts.length} vm(s) on vlan ${net.vlan}`,
      ...hosts.map((h) => `booted ${h}`),
    ]);
    fs.writeFileSync(saved, JSON.stringify(hosts));
    event({ output: { team: index, hosts } });
  },
  down: async () => {
    const hosts = fs.existsSync(saved) ? JSON.parse(fs.readFileSync(saved, 'utf8')) : [];
    await work([`team ${index}: deleting ${hosts.join(', ') || 'nothing'}`]);
    fs.rmSync(saved, { force: true });
  },
});
