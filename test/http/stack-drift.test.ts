// A stack shows its drifted units (SPEC §14.2) on both stores: GET /v1/stacks/{name} and the list carry
// each unit's `drift` as its deployment does, set by a check that finds it absent and cleared by one that
// finds it up; the drift events are the stack's (events?stack=); the OpenAPI document names the field.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, waitFor } from '../helpers/engine.ts';
import { harness, json, type Harness } from './helpers.ts';

describe.each(DIALECTS)('drift on stacks on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ dialect });
  });
  afterAll(async () => {
    await h?.close();
  });

  const get = async (url: string) => json(await h.app.inject({ url }));
  const post = (url: string, payload: unknown = {}) =>
    h.app.inject({ method: 'POST', url, payload: payload as never });
  type Unit = { deployment: string; drift: unknown };
  const driftOf = (s: { units: Unit[] }) => Object.fromEntries(s.units.map((u) => [u.deployment, u.drift]));

  it('each unit shows its drift: set by an absent check, cleared by an up one', async () => {
    const spec = {
      name: 'sd',
      units: [
        { key: 'net', plan: 'ok' },
        { key: 'vm', plan: 'ok', after: ['net'] },
      ],
    };
    expect((await post('/v1/stacks', spec)).statusCode).toBe(201);
    expect((await post('/v1/stacks/sd/deploy')).statusCode).toBe(202);
    await waitFor(async () => {
      const s = await get('/v1/stacks/sd');
      return s.state === 'ready' && s.active_run === null;
    }, 'sd ready');
    expect(driftOf(await get('/v1/stacks/sd'))).toEqual({ 'sd-net': null, 'sd-vm': null });

    const net = await get('/v1/deployments/sd-net');
    const ws = path.join(h.config.dataDir, 'workspaces', net.id);
    const check = async (rc: number) => {
      fs.writeFileSync(path.join(ws, 'check_rc'), `${rc}\n`);
      expect((await post('/v1/deployments/sd-net/check')).statusCode).toBe(202);
      return waitFor(async () => {
        const d = (await get('/v1/deployments/sd-net')).drift;
        if (rc === 0) return d === null ? 'cleared' : null;
        return d;
      }, `check rc ${rc} recorded`);
    };

    const found = await check(3);
    expect(found).toEqual({ since: expect.any(String), verdict: 'absent', heal_at: null });
    const s = await get('/v1/stacks/sd');
    expect(s.state).toBe('ready'); // drift does not change a state
    expect(driftOf(s)).toEqual({ 'sd-net': found, 'sd-vm': null });
    const listed = (await get('/v1/stacks')).items.find((x: { name: string }) => x.name === 'sd');
    expect(driftOf(listed)).toEqual({ 'sd-net': found, 'sd-vm': null });
    const events = await get('/v1/events?stack=sd&type=drift_detected,drift_cleared');
    expect(events.items.map((e: { type: string }) => e.type)).toEqual(['drift_detected']);

    await check(0);
    expect(driftOf(await get('/v1/stacks/sd'))).toEqual({ 'sd-net': null, 'sd-vm': null });
    const after = await get('/v1/events?stack=sd&type=drift_detected,drift_cleared');
    expect(after.items.map((e: { type: string }) => e.type)).toEqual(['drift_detected', 'drift_cleared']);
  });

  it('the OpenAPI document names a unit drift', async () => {
    const doc = await get('/openapi.json');
    const unit = doc.components.schemas.Stack.properties.units.items;
    expect(unit.required).toContain('drift');
    expect(JSON.stringify(unit.properties.drift)).toContain('Drift');
  });
});
