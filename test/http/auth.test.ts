// Authentication and roles (SPEC §6): every route × no token / bad token / viewer / operator / admin,
// force as an admin power, actors named after tokens, and tokens never in a log line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../../src/domain/types.ts';
import { waitFor } from '../helpers/engine.ts';
import {
  bearer,
  expectProblem,
  harness,
  json,
  snapshot,
  TOKEN_NAMES,
  TOKENS,
  waitState,
  type Harness,
  type RoleName,
} from './helpers.ts';
import { DIALECTS } from '../helpers/engine.ts';

let h: Harness;
describe.each(DIALECTS)('on %s', (dialect) => {
  beforeAll(async () => {
    h = await harness({ auth: true, captureLogs: true, dialect });
  });
  afterAll(async () => {
    await h?.close();
  });

  interface Probe {
    method: 'GET' | 'POST' | 'DELETE';
    url: string;
    /** Minimum role; null = public. */
    role: Role | null;
    payload?: object;
  }

  // Each probe is refused *after* auth (404 unknown deployment, 422 bad body) or is a read, so running
  // the whole matrix writes nothing.
  const PROBES: Probe[] = [
    { method: 'GET', url: '/v1/health', role: null },
    { method: 'GET', url: '/openapi.json', role: null },
    { method: 'GET', url: '/docs', role: null },
    { method: 'GET', url: '/v1/health/ready', role: 'viewer' },
    { method: 'GET', url: '/v1/plans', role: 'viewer' },
    { method: 'GET', url: '/v1/instances', role: 'viewer' },
    { method: 'GET', url: '/v1/deployments', role: 'viewer' },
    { method: 'POST', url: '/v1/deployments', role: 'operator', payload: { name: 'Not Valid', plan: 'ok' } },
    { method: 'GET', url: '/v1/deployments/nope', role: 'viewer' },
    { method: 'DELETE', url: '/v1/deployments/nope', role: 'admin' },
    { method: 'POST', url: '/v1/deployments/nope/attempts', role: 'operator', payload: {} },
    { method: 'GET', url: '/v1/deployments/nope/attempts', role: 'viewer' },
    { method: 'GET', url: '/v1/attempts/att_nope', role: 'viewer' },
    { method: 'GET', url: '/v1/attempts/att_nope/log', role: 'viewer' },
    { method: 'POST', url: '/v1/deployments/nope/cancel', role: 'operator' },
    { method: 'POST', url: '/v1/deployments/nope/teardown', role: 'operator', payload: { confirm: 'nope' } },
    {
      method: 'POST',
      url: '/v1/deployments/nope/resolve',
      role: 'admin',
      payload: { state: 'ready', reason: 'r' },
    },
    { method: 'POST', url: '/v1/deployments/nope/check', role: 'operator' },
    { method: 'GET', url: '/v1/deployments/nope/transitions', role: 'viewer' },
    { method: 'GET', url: '/v1/events', role: 'viewer' },
    { method: 'GET', url: '/v1/deployments/nope/events', role: 'viewer' },
    { method: 'GET', url: '/v1/events/stream?after=x', role: 'viewer' },
    { method: 'GET', url: '/v1/deployments/nope/events/stream', role: 'viewer' },
    { method: 'GET', url: '/v1/no-such-route', role: 'viewer' },
  ];

  const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
  type Who = 'none' | 'bad' | RoleName;
  const WHO: Who[] = ['none', 'bad', 'viewer', 'operator', 'admin'];

  function headersOf(who: Who): Record<string, string> {
    if (who === 'none') return {};
    if (who === 'bad') return { authorization: 'Bearer not-a-real-token' };
    return bearer(who);
  }

  describe('role × route', () => {
    for (const p of PROBES) {
      for (const who of WHO) {
        const expected =
          p.role === null
            ? 'pass'
            : who === 'none' || who === 'bad'
              ? 401
              : RANK[who] >= RANK[p.role]
                ? 'pass'
                : 403;
        it(`${p.method} ${p.url} as ${who} → ${expected}`, async () => {
          const before = await snapshot(h.engine);
          const res = await h.app.inject({
            method: p.method,
            url: p.url,
            payload: p.payload,
            headers: headersOf(who),
          });
          if (expected === 401) {
            expectProblem(res, 401, 'AUTH_REQUIRED');
            expect(res.headers['www-authenticate']).toBe('Bearer');
            expect(res.headers['lifeline-role']).toBeUndefined();
            expect(res.headers['lifeline-actor']).toBeUndefined();
          } else if (expected === 403) {
            expectProblem(res, 403, 'FORBIDDEN');
            // every authenticated response names the token's role, refusals included
            expect(res.headers['lifeline-role']).toBe(who);
          } else {
            expect([401, 403], res.body).not.toContain(res.statusCode);
            expect(res.statusCode).toBeLessThan(500);
            if (p.role !== null) expect(res.headers['lifeline-role']).toBe(who);
          }
          expect(await snapshot(h.engine)).toEqual(before);
        });
      }
    }

    it('malformed Authorization headers are 401', async () => {
      for (const value of [
        `Basic ${Buffer.from('a:b').toString('base64')}`,
        'Bearer',
        'Bearer ',
        TOKENS.admin,
        `Bearer ${TOKENS.admin} extra`,
        `Bearer ${TOKENS.admin}x`,
        `Token ${TOKENS.admin}`,
      ]) {
        expectProblem(
          await h.app.inject({ url: '/v1/plans', headers: { authorization: value } }),
          401,
          'AUTH_REQUIRED',
        );
      }
      // the scheme is case-insensitive (RFC 9110)
      const lower = await h.app.inject({
        url: '/v1/plans',
        headers: { authorization: `bearer ${TOKENS.viewer}` },
      });
      expect(lower.statusCode).toBe(200);
    });
  });

  describe('force is an admin power; actors are token names', () => {
    it('operators deploy and tear down; force needs admin (403, nothing written)', async () => {
      const op = bearer('operator');
      const created = await h.app.inject({
        method: 'POST',
        url: '/v1/deployments',
        headers: op,
        payload: { name: 'auth-1', plan: 'ok' },
      });
      expect(created.statusCode).toBe(201);

      const before = await snapshot(h.engine);
      expectProblem(
        await h.app.inject({
          method: 'POST',
          url: '/v1/deployments/auth-1/attempts',
          headers: op,
          payload: { force: true },
        }),
        403,
        'FORBIDDEN',
      );
      expectProblem(
        await h.app.inject({
          method: 'POST',
          url: '/v1/deployments/auth-1/teardown',
          headers: op,
          payload: { confirm: 'auth-1', force: true },
        }),
        403,
        'FORBIDDEN',
      );
      const deleteForced = await h.app.inject({
        method: 'DELETE',
        url: '/v1/deployments/auth-1?force=true',
        headers: op,
      });
      expectProblem(deleteForced, 403, 'FORBIDDEN');
      expect(deleteForced.headers['lifeline-role']).toBe('operator');
      expect(await snapshot(h.engine)).toEqual(before);

      const att = await h.app.inject({
        method: 'POST',
        url: '/v1/deployments/auth-1/attempts',
        headers: op,
        payload: { force: false },
      });
      expect(att.statusCode, att.body).toBe(202);
      expect(json(att).requested_by).toBe(TOKEN_NAMES.operator);
      // The dashboard tells its own attempts by this header (no Approve on them: SPEC §13.3).
      expect(att.headers['lifeline-actor']).toBe(encodeURIComponent(json(att).requested_by));
      await waitState(h.app, 'auth-1', 'ready', op);

      const forced = await h.app.inject({
        method: 'POST',
        url: '/v1/deployments/auth-1/attempts',
        headers: bearer('admin'),
        payload: { force: true },
      });
      expect(forced.statusCode, forced.body).toBe(202);
      expect(json(forced)).toMatchObject({ requested_by: TOKEN_NAMES.admin });
      await waitState(h.app, 'auth-1', 'ready', op);

      const t = json(
        await h.app.inject({ url: '/v1/deployments/auth-1/transitions', headers: bearer('viewer') }),
      );
      const actors = t.items.map((x: { actor: string }) => x.actor);
      // created, deploy accepted (operator); forced deploy accepted (admin); the runner writes the outcomes
      expect([actors[0], actors[1], actors[3]]).toEqual([
        TOKEN_NAMES.operator,
        TOKEN_NAMES.operator,
        TOKEN_NAMES.admin,
      ]);
      expect(t.items[3]).toMatchObject({ trigger: 'deploy_accepted', reason: 'forced' });
    });
  });

  describe('tokens never reach a log line', () => {
    it('request logs carry trace_id, method, url and status, and no Authorization header or token', async () => {
      const res = await h.app.inject({
        url: '/v1/deployments/nope',
        headers: { ...bearer('admin'), 'x-request-id': 'log-check-1' },
      });
      expect(res.statusCode).toBe(404);
      await h.app.inject({ url: '/v1/plans', headers: { authorization: `Bearer ${TOKENS.operator}-wrong` } });
      // onResponse (which writes the line) may run just after inject() has resolved
      const line = await waitFor(
        () => h.logs.find((l) => l.trace_id === 'log-check-1'),
        'the request log line',
      );
      expect(line).toMatchObject({
        method: 'GET',
        url: '/v1/deployments/nope',
        status: 404,
        actor: TOKEN_NAMES.admin,
      });
      const text = h.logText();
      expect(text.length).toBeGreaterThan(0);
      for (const token of Object.values(TOKENS)) expect(text).not.toContain(token);
      expect(text.toLowerCase()).not.toContain('bearer');
    });
  });
});
