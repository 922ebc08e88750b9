#!/usr/bin/env node
// The range's network: "creates" a VLAN and its subnet and publishes both as outputs.
import { event, main, params, work } from './lib.mjs';

const vlan = params.vlan ?? 100;
const subnet = `10.${vlan % 256}.0.0/16`;

await main({
  up: async () => {
    await work([`creating vlan ${vlan}`, `routing ${subnet}`, 'network up']);
    event({ output: { vlan, subnet, gateway: `10.${vlan % 256}.0.1` } });
  },
  down: () => work([`removing vlan ${vlan}`, 'network gone']),
});
