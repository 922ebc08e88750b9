// A plan's environment is built explicitly (issue 9): the server's secrets (a token read through
// token_env, PGPASSWORD, DATABASE_URL) reach neither attempts nor checks; `env_passthrough` names
// what may. Proven against a real `lifeline serve` process running a plan that prints `env`.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configFromObject } from '../../src/config/load.ts';
import { buildPlanEnv } from '../../src/runner/env.ts';
import { FIXTURES, tempDir, waitFor } from '../helpers/engine.ts';
import { lifelineArgv } from '../helpers/lifeline-bin.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TOKEN = 'tok-0123456789-operator-secret';

const SERVER_ENV = {
  PATH: '/usr/bin:/bin',
  HOME: '/home/x',
  LANG: 'C.UTF-8',
  TZ: 'UTC',
  CI_TOKEN: TOKEN,
  PGPASSWORD: 'pg-secret',
  DATABASE_URL: 'postgres://u:pw@db/x',
  AWS_SECRET_ACCESS_KEY: 'aws-secret',
  PASS_ME: 'yes',
  LIFELINE_DB: 'sqlite:/elsewhere.db',
};

describe('buildPlanEnv', () => {
  const plan = { env: { REGION: 'eu-1' }, envPassthrough: ['PASS_ME', 'NOT_SET'] };

  it('gives an attempt the base, its passthrough, its env and the runner variables, nothing else', () => {
    const env = buildPlanEnv(
      plan,
      {
        kind: 'deploy',
        params: '{}',
        paramsFile: '/r/params.json',
        deploymentId: 'dep_1',
        deploymentName: 'web-1',
        attemptId: 'att_1',
        attemptNumber: 2,
        workspace: '/w',
        eventsFile: '/r/events.jsonl',
      },
      SERVER_ENV,
    );
    expect(env).toEqual({
      PATH: '/usr/bin:/bin',
      HOME: '/home/x',
      LANG: 'C.UTF-8',
      TZ: 'UTC',
      PASS_ME: 'yes',
      REGION: 'eu-1',
      LIFELINE_PARAMS: '{}',
      LIFELINE_PARAMS_FILE: '/r/params.json',
      LIFELINE_DEPLOYMENT_ID: 'dep_1',
      LIFELINE_DEPLOYMENT_NAME: 'web-1',
      LIFELINE_ATTEMPT_ID: 'att_1',
      LIFELINE_ATTEMPT_NUMBER: '2',
      LIFELINE_KIND: 'deploy',
      LIFELINE_WORKSPACE: '/w',
      LIFELINE_EVENTS_FILE: '/r/events.jsonl',
    });
  });

  it('gives a check no attempt variables', () => {
    const env = buildPlanEnv(
      plan,
      { kind: 'check', params: '{}', deploymentId: 'dep_1', deploymentName: 'web-1', workspace: '/w' },
      SERVER_ENV,
    );
    expect(
      Object.keys(env)
        .filter((k) => k.startsWith('LIFELINE_'))
        .sort(),
    ).toEqual([
      'LIFELINE_DEPLOYMENT_ID',
      'LIFELINE_DEPLOYMENT_NAME',
      'LIFELINE_KIND',
      'LIFELINE_PARAMS',
      'LIFELINE_WORKSPACE',
    ]);
    expect(env.PGPASSWORD).toBeUndefined();
    expect(env.PASS_ME).toBe('yes');
  });
});

describe('env_passthrough in the config', () => {
  const plan = (extra: Record<string, unknown>) =>
    configFromObject({ plans: { p: { deploy: ['/bin/true'], teardown: ['/bin/true'], ...extra } } });

  it('defaults to none and keeps the names given', () => {
    expect(plan({}).plans.p.envPassthrough).toEqual([]);
    expect(plan({ env_passthrough: ['AWS_PROFILE', 'KUBECONFIG'] }).plans.p.envPassthrough).toEqual([
      'AWS_PROFILE',
      'KUBECONFIG',
    ]);
  });

  it('refuses what is not a list of variable names, runner variables and repeats', () => {
    expect(() => plan({ env_passthrough: 'AWS_PROFILE' })).toThrow(
      /plans\.p\.env_passthrough: expected a list of variable names, got a string/,
    );
    expect(() => plan({ env_passthrough: ['1BAD'] })).toThrow(
      /plans\.p\.env_passthrough\[0\]: invalid variable name/,
    );
    expect(() => plan({ env_passthrough: ['LIFELINE_PARAMS'] })).toThrow(
      /plans\.p\.env_passthrough\[0\]: is set by the runner/,
    );
    expect(() => plan({ env_passthrough: ['A', 'B', 'A'] })).toThrow(
      /plans\.p\.env_passthrough\[2\]: A is listed twice/,
    );
    expect(() => plan({ env_passthroug: ['A'] })).toThrow(/did you mean env_passthrough\?/);
  });
});

describe('a real server and a plan that prints env', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('shows the plan neither the token nor the database password; the passthrough variable arrives', async () => {
    const dir = tempDir('lifeline-planenv-');
    const cfg = path.join(dir, 'lifeline.yaml');
    fs.writeFileSync(
      cfg,
      `server: { host: 127.0.0.1, port: 0 }
data_dir: ./data
auth:
  tokens:
    - { name: ci, role: operator, token_env: CI_TOKEN }
plans:
  env:
    deploy: ['${FIXTURES}/env.sh']
    teardown: ['${FIXTURES}/ok.sh']
    check: ['${FIXTURES}/env-check.sh']
    env: { REGION: eu-1 }
    env_passthrough: [PASS_ME]
`,
    );
    const { LIFELINE_TEST_PG_URL: _pg, ...inherited } = process.env;
    child = spawn(process.execPath, [...lifelineArgv(), 'serve', '--config', cfg], {
      cwd: ROOT,
      env: {
        ...inherited,
        ...SERVER_ENV,
        PATH: process.env.PATH,
        LIFELINE_DB: '',
        LIFELINE_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (out += b));
    const url = await waitFor(
      () => {
        if (child!.exitCode !== null) throw new Error(`server exited: ${out}`);
        return /Lifeline listening on (http:\/\/[^"\s]+)/.exec(out)?.[1] ?? null;
      },
      'the server to listen',
      30_000,
    );
    const call = async (method: string, p: string, body?: unknown) => {
      const res = await fetch(url + p, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, text: await res.text() };
    };

    expect((await call('POST', '/v1/deployments', { name: 'env-1', plan: 'env' })).status).toBe(201);
    const started = await call('POST', '/v1/deployments/env-1/attempts', {});
    expect(started.status).toBe(202);
    const id = JSON.parse(started.text).id as string;
    await waitFor(
      async () => JSON.parse((await call('GET', `/v1/attempts/${id}`)).text).state === 'succeeded',
      'the attempt to succeed',
    );
    const log = (await call('GET', `/v1/attempts/${id}/log`)).text;
    const names = log
      .split('\n')
      .map((l) => l.split('=')[0])
      .filter(Boolean);

    expect(names).toContain('PASS_ME');
    expect(log).toContain('PASS_ME=yes');
    expect(log).toContain('REGION=eu-1');
    expect(log).toContain(`LIFELINE_ATTEMPT_ID=${id}`);
    expect(names).toContain('PATH');
    for (const secret of ['CI_TOKEN', 'PGPASSWORD', 'DATABASE_URL', 'AWS_SECRET_ACCESS_KEY', 'LIFELINE_DB']) {
      expect(names).not.toContain(secret);
    }
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain('pg-secret');

    // The check runs with the same rules: its script answers "up" only when the secrets are absent.
    expect((await call('POST', '/v1/deployments/env-1/check')).status).toBe(202);
    const verdict = await waitFor(async () => {
      const page = JSON.parse((await call('GET', '/v1/deployments/env-1/events?type=check_result')).text);
      return page.items[0]?.data.verdict as string | undefined;
    }, 'the check result');
    expect(verdict).toBe('up');
  }, 60_000);
});
