// A plan whose program is missing: warned about when the server starts (which it still does), and
// the reason reaches the operator through the API, `lifeline logs` and `lifeline show`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { missingPrograms } from '../../src/runner/programs.ts';
import { serve, type Server } from '../../src/server.ts';
import { FIXTURES, tempDir, waitFor } from '../helpers/engine.ts';
import { lifelineArgv } from '../helpers/lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const OK = path.join(FIXTURES, 'ok.sh');
const GONE = path.join(FIXTURES, 'gone.sh');

describe('missingPrograms', () => {
  it('names each plan program the runner would not find, through the plan PATH for bare names', () => {
    const dir = tempDir('lifeline-programs-');
    const notExec = path.join(dir, 'not-exec.sh');
    fs.writeFileSync(notExec, '#!/bin/sh\n', { mode: 0o644 });
    const config = configFromObject({
      plans: {
        fine: { deploy: [OK], teardown: ['sh', '-c', 'true'], check: [OK] },
        broken: { deploy: [GONE], teardown: [notExec], check: ['no-such-program-xyz'] },
        nopath: { deploy: ['sh'], teardown: [OK], env: { PATH: dir } },
      },
    });
    expect(missingPrograms(config.plans, { PATH: process.env.PATH })).toEqual([
      { plan: 'broken', kind: 'deploy', program: GONE },
      { plan: 'broken', kind: 'teardown', program: notExec },
      { plan: 'broken', kind: 'check', program: 'no-such-program-xyz' },
      { plan: 'nopath', kind: 'deploy', program: 'sh' },
    ]);
  });
});

describe('a server with a plan whose program is missing', () => {
  let server: Server | undefined;
  afterAll(async () => {
    await server?.close();
  });

  it('starts with a warning; the attempt, its log and `lifeline show` tell why it failed', async () => {
    const dir = tempDir('lifeline-programs-');
    const cfg = path.join(dir, 'lifeline.yaml');
    fs.writeFileSync(
      cfg,
      `server: { host: 127.0.0.1, port: 0 }
data_dir: ./data
plans:
  broken:
    deploy: ['./plans/x.sh']
    teardown: ['${OK}']
`,
    );
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).trim().split('\n'));
        done();
      },
    });
    server = await serve({ configFile: cfg, env: {}, logger: pino({ level: 'warn' }, sink) });
    const program = path.join(dir, 'plans/x.sh');
    const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === 40);
    expect(warnings).toEqual([
      expect.objectContaining({
        plan: 'broken',
        kind: 'deploy',
        program,
        msg: `plan broken: deploy program not found or not executable: ${program}`,
      }),
    ]);

    const post = (p: string, body: unknown) =>
      fetch(server!.url + p, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await post('/v1/deployments', { name: 'b-1', plan: 'broken' })).status).toBe(201);
    const res = await post('/v1/deployments/b-1/attempts', {});
    expect(res.status).toBe(202);
    const id = ((await res.json()) as { id: string }).id;
    const attempt = await waitFor(async () => {
      const a = (await (await fetch(`${server!.url}/v1/attempts/${id}`)).json()) as Record<string, unknown>;
      return a.state === 'failed' ? a : null;
    }, 'the attempt to fail');
    expect(attempt).toMatchObject({
      reason: 'runner_error',
      detail: `program not found or not executable: ${program}`,
    });

    // Async: the server runs in this process, so a blocking spawn would starve it.
    const cli = (...args: string[]) =>
      promisify(execFile)(process.execPath, [...lifelineArgv(), ...args], {
        cwd: ROOT,
        env: { ...process.env, LIFELINE_URL: server!.url, NO_COLOR: '1' },
        encoding: 'utf8',
      });
    expect((await cli('logs', 'b-1')).stdout).toBe(
      `lifeline: program not found or not executable: ${program}\n`,
    );
    expect((await cli('show', 'b-1')).stdout).toMatch(
      /runner_error: program not found or not executable: \S*plans\/x\.sh/,
    );
  }, 60_000);
});
