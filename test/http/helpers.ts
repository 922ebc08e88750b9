// HTTP test harness: a real engine (temp data dir + SQLite or Postgres, fixture plans) behind buildApp, driven by
// inject().
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { expect } from 'vitest';
import type { LifelineConfig } from '../../src/config/types.ts';
import { ERROR_CODES } from '../../src/domain/types.ts';
import { buildApp, type AppApi } from '../../src/http/app.ts';
import { openLifeline, type Lifeline } from '../../src/lifecycle/engine.ts';
import { dialectConfig, quietLogger, tempDir, waitFor, type TestDialect } from '../helpers/engine.ts';

export const TOKENS = {
  viewer: 'tok-viewer-0123456789abcdef',
  operator: 'tok-operator-0123456789abcdef',
  admin: 'tok-admin-0123456789abcdef',
} as const;
export type RoleName = keyof typeof TOKENS;

/** Token names as the API reports them (actor, requested_by). */
export const TOKEN_NAMES: Record<RoleName, string> = { viewer: 'val', operator: 'ci', admin: 'alice' };

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export const AUTH_CONFIG = {
  auth: {
    tokens: (Object.keys(TOKENS) as RoleName[]).map((role) => ({
      name: TOKEN_NAMES[role],
      role,
      token_sha256: sha256(TOKENS[role]),
    })),
  },
};

export function bearer(role: RoleName): Record<string, string> {
  return { authorization: `Bearer ${TOKENS[role]}` };
}

export interface Harness {
  dir: string;
  config: LifelineConfig;
  engine: Lifeline;
  app: FastifyInstance;
  /** Log lines the app wrote (JSON objects), when built with captureLogs. */
  logs: Record<string, unknown>[];
  logText(): string;
  /** The server's open sockets, one line each (what a hung close or a connection left open was doing). */
  describeSockets(): string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  auth?: boolean;
  extra?: Record<string, unknown>;
  captureLogs?: boolean;
  /** Wraps the engine as the app's api (to inject failures). */
  wrapApi?: (engine: Lifeline) => AppApi;
  bodyLimit?: number;
  /** The store behind the engine; default sqlite. */
  dialect?: TestDialect;
}

export async function harness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = tempDir('lifeline-http-');
  const config = await dialectConfig(opts.dialect ?? 'sqlite', dir, {
    ...(opts.auth ? AUTH_CONFIG : {}),
    ...opts.extra,
  });
  const engine = await openLifeline({ config, logger: quietLogger() });
  await engine.start();
  const logs: Record<string, unknown>[] = [];
  let raw = '';
  const logger = opts.captureLogs
    ? pino(
        { level: 'debug' },
        new Writable({
          write(chunk, _enc, cb) {
            raw += chunk.toString();
            for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line));
            cb();
          },
        }),
      )
    : false;
  const api = opts.wrapApi ? opts.wrapApi(engine) : engine;
  const app = await buildApp({ api, config, logger, bodyLimit: opts.bodyLimit });
  // Open sockets, described when a close hangs (a connection held open once hung the fuzz's afterAll).
  const sockets = new Set<Socket>();
  app.server.on('connection', (sock: Socket) => {
    sockets.add(sock);
    sock.once('close', () => sockets.delete(sock));
  });
  const describeSockets = () =>
    [...sockets]
      .map(
        (k) =>
          `\n  socket :${k.remotePort} read ${k.bytesRead} B, wrote ${k.bytesWritten} B, paused ${k.isPaused()}, reading ${(k as Socket & { _handle?: { reading?: boolean } })._handle?.reading},` +
          ` readableEnded ${k.readableEnded}, writableEnded ${k.writableEnded}, destroyed ${k.destroyed}`,
      )
      .join('');
  return {
    dir,
    config,
    engine,
    app,
    logs,
    logText: () => raw,
    describeSockets,
    async close() {
      // A close that hangs fails the hook after a minute; say where it hangs (app or engine step).
      const began = Date.now();
      const slow = setInterval(() => {
        const where = engine.closingStep ? `engine ${engine.closingStep}` : 'app.close';
        // In app.close: whether Node's server still waits for connections (server.close waits for all).
        const server = app.server;
        server.getConnections((_err, n) =>
          console.error(
            `harness close still waiting on ${where} after ${Date.now() - began} ms` +
              ` (server listening: ${server.listening}, open connections: ${n})${describeSockets()}`,
          ),
        );
      }, 15_000);
      try {
        await app.close();
        await engine.close();
      } finally {
        clearInterval(slow);
      }
    },
  };
}

/** Asserts a problem+json response with the given status and code; returns the parsed problem. */
export function expectProblem(res: LightMyRequestResponse, status: number, code?: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const p = JSON.parse(res.body);
  expect(p).toMatchObject({ status, type: expect.any(String), title: expect.any(String) });
  expect(typeof p.detail).toBe('string');
  expect(typeof p.trace_id).toBe('string');
  expect(p.trace_id).toBe(res.headers['x-request-id']);
  expect([...ERROR_CODES, 'INTERNAL']).toContain(p.code);
  if (code) expect(p.code).toBe(code);
  if (p.errors !== undefined) {
    expect(Array.isArray(p.errors)).toBe(true);
    for (const e of p.errors) expect(e).toEqual({ field: expect.any(String), reason: expect.any(String) });
  }
  return p as { status: number; code: string; detail: string; errors?: { field: string; reason: string }[] };
}

export function json<T = any>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}

/** What a rejected request must not change (SPEC §8.6): rows of the state tables and the last seq. */
export interface StoreSnapshot {
  deployments: number;
  attempts: number;
  events: number;
  lastSeq: number;
  /** id:state:version:deleted for every deployment, id:state:cancel for every attempt, and every stack. */
  digest: string;
}

export async function snapshot(engine: Lifeline): Promise<StoreSnapshot> {
  // One read transaction: the counts, the last seq and the rows are of the same moment.
  return engine.store.db.transaction().execute(async (db) => {
    const count = async (t: 'deployments' | 'attempts' | 'events') =>
      Number((await db.selectFrom(t).select(db.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const last = await db.selectFrom('events').select(db.fn.max('seq').as('m')).executeTakeFirst();
    const deps = await db
      .selectFrom('deployments')
      .select(['id', 'state', 'version', 'deleted_at', 'params', 'labels'])
      .orderBy('id')
      .execute();
    const atts = await db
      .selectFrom('attempts')
      .select(['id', 'state', 'cancel_requested_at'])
      .orderBy('id')
      .execute();
    const stacks = await db
      .selectFrom('stacks')
      .select(['id', 'state', 'version', 'deleted_at', 'spec'])
      .orderBy('id')
      .execute();
    const runs = await db
      .selectFrom('runs')
      .select(['id', 'state', 'version', 'steps'])
      .orderBy('id')
      .execute();
    const digest = createHash('sha256')
      .update(JSON.stringify([deps, atts, stacks, runs]))
      .digest('hex');
    return {
      deployments: await count('deployments'),
      attempts: await count('attempts'),
      events: await count('events'),
      lastSeq: Number(last?.m ?? 0),
      digest,
    };
  });
}

/** Waits until no attempt is active and the event log stopped growing (background writes are done). */
export async function quiesce(engine: Lifeline, quietMs = 150): Promise<void> {
  await waitFor(async () => {
    const active = await engine.store.db
      .selectFrom('attempts')
      .select('id')
      .where('state', 'in', ['queued', 'running'])
      .execute();
    if (active.length > 0) return false;
    const runs = await engine.store.db
      .selectFrom('runs')
      .select('id')
      .where('state', 'in', ['queued', 'running'])
      .execute();
    if (runs.length > 0) return false;
    const before = (await snapshot(engine)).lastSeq;
    await new Promise((r) => setTimeout(r, quietMs));
    return (await snapshot(engine)).lastSeq === before;
  }, 'the engine to be idle');
}

export async function waitState(app: FastifyInstance, ref: string, state: string, headers = {}) {
  return waitFor(async () => {
    const res = await app.inject({ url: `/v1/deployments/${ref}`, headers });
    const d = json(res);
    return d.state === state ? d : null;
  }, `${ref} to be ${state}`);
}

export async function waitAttempt(app: FastifyInstance, id: string, pred: (a: any) => boolean, headers = {}) {
  return waitFor(async () => {
    const a = json((await app.inject({ url: `/v1/attempts/${id}`, headers })) as LightMyRequestResponse);
    return pred(a) ? a : null;
  }, `attempt ${id}`);
}

/** Deploys `name` on the sleep plan, then kills the plan and its supervisor: the outcome is lost (unknown). */
export async function makeUnknown(
  h: Harness,
  name: string,
  headers: Record<string, string> = {},
): Promise<void> {
  const { readProcess, readSupervisor } = await import('../../src/runner/rundir.ts');
  const path = await import('node:path');
  const created = await h.app.inject({
    method: 'POST',
    url: '/v1/deployments',
    headers,
    payload: { name, plan: 'sleep' },
  });
  expect(created.statusCode, created.body).toBe(201);
  const started = await h.app.inject({ method: 'POST', url: `/v1/deployments/${name}/attempts`, headers });
  expect(started.statusCode, started.body).toBe(202);
  const att = await waitAttempt(h.app, json(started).id, (a) => a.state === 'running', headers);
  const runDir = path.join(h.config.dataDir, 'attempts', att.id);
  process.kill(-readSupervisor(runDir)!.pid, 'SIGKILL');
  process.kill(-readProcess(runDir)!.pid, 'SIGKILL');
  await waitState(h.app, name, 'unknown', headers);
}
