// What the CLI says when something is wrong, against a real server that wants a token: one line and a
// hint for a usage error, each validation error once, a hint that tells a refused token from a missing
// one, config errors as usage errors (exit 2, with the line), --help naming the environment, and the
// columns of `events --follow`.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cleanEnv, cli, CliProcess, spawnCli, tempDir, TestServer } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const TOKEN = 'messages-test-token-0123456789';
let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start(undefined, {
    auth: {
      tokens: [
        { name: 'admin', role: 'admin', token_sha256: createHash('sha256').update(TOKEN).digest('hex') },
      ],
    },
  });
});

afterAll(async () => {
  await server?.stop();
});

const withToken = (args: string[]) => cli(server, args, { LIFELINE_TOKEN: TOKEN });

describe('usage errors', () => {
  it('print the error and where to read more, not the whole help; exit 2', async () => {
    for (const [args, error, hint] of [
      [['deploy'], "error: missing required argument 'name'", 'hint: see lifeline deploy --help'],
      [['deploy', 'x', '--bogus'], "error: unknown option '--bogus'", 'hint: see lifeline deploy --help'],
      [
        ['events', '--after', '-1'],
        "error: option '--after <seq>' argument '-1' is invalid.",
        'hint: see lifeline events --help',
      ],
      [['no-such-command'], "error: unknown command 'no-such-command'", 'hint: see lifeline --help'],
    ] as const) {
      const r = await withToken([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, args.join(' ')).toHaveLength(2);
      expect(lines[0].startsWith(error), lines[0]).toBe(true);
      expect(lines[1]).toBe(hint);
    }
  });

  it('--help names LIFELINE_URL and LIFELINE_TOKEN, for the program and for a client command', async () => {
    for (const args of [['--help'], ['deploy', '--help'], ['events', '--help']]) {
      const r = await withToken(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^ {2}LIFELINE_URL +the server \(default http:\/\/127\.0\.0\.1:7400\)$/m);
      expect(r.stdout).toMatch(/^ {2}LIFELINE_TOKEN +bearer token/m);
    }
  });
});

describe('API errors', () => {
  it('a missing token and a refused one get different hints', async () => {
    const none = await cli(server, ['ls']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^error: AUTH_REQUIRED: /);
    expect(none.stderr).toMatch(/hint: this server wants a token; set LIFELINE_TOKEN/);
    const wrong = await cli(server, ['ls'], { LIFELINE_TOKEN: 'not-the-token' });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^error: AUTH_REQUIRED: /);
    expect(wrong.stderr).toMatch(/hint: the server did not accept the token in LIFELINE_TOKEN/);
    expect(wrong.stderr).not.toMatch(/set LIFELINE_TOKEN to one/);
  });

  it('a validation error is said once', async () => {
    const name = await withToken(['create', 'Bad_Name', '--plan', 'ok']);
    expect(name.code).toBe(2);
    expect(name.stderr.trimEnd().split('\n')).toEqual([
      'error: VALIDATION: invalid body: name: must match ^[a-z0-9][a-z0-9-]{0,62}$',
    ]);
    const params = await withToken([
      'create',
      'm-1',
      '--plan',
      'params',
      '--param',
      'replicas=0',
      '--param',
      'colour=blue',
    ]);
    expect(params.code).toBe(2);
    const lines = params.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('error: VALIDATION: params do not match the schema of plan params');
    expect(lines.slice(1).sort()).toEqual([
      '  - params.colour: is not allowed',
      '  - params.replicas: must be >= 1',
    ]);
  });
});

describe('serve with a bad config', () => {
  it('is a usage error: one line naming the file, line and key, exit 2', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      file,
      'plans:\n  demo:\n    deploy: ["./d.sh"]\n    teardown: ["./t.sh"]\n    timeout: soon\n',
    );
    const r = await new CliProcess(['serve', '--config', file], cleanEnv()).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `lifeline serve: ${file}:5: plans.demo.timeout: expected a duration like 30s, 10m or 1h\n`,
    );
  });
});

describe('events --follow', () => {
  it('keeps its columns in line whatever the event type and deployment name', async () => {
    const long = 'a-deployment-with-a-rather-long-name';
    expect((await withToken(['create', 'ev-1', '--plan', 'ok'])).code).toBe(0);
    expect((await withToken(['create', long, '--plan', 'ok'])).code).toBe(0);
    expect((await withToken(['deploy', 'ev-1', '--follow'])).code).toBe(0);
    const f = spawnCli(server, ['events', '--follow'], { LIFELINE_TOKEN: TOKEN });
    await f.waitForOutput(/deploy ended succeeded/, 'the attempt_end line');
    f.proc.kill('SIGINT');
    await f.done;
    const lines = f.stdout.split('\n').filter((l) => l !== '');
    expect(lines[0]).toMatch(/^SEQ +AT +TYPE +DEPLOYMENT +DETAIL$/);
    const rows = lines.slice(1);
    expect(rows.some((l) => l.includes('deployment_created'))).toBe(true);
    expect(rows.some((l) => l.includes(long))).toBe(true);
    // Every column starts where the header's does.
    const starts = ['AT', 'TYPE', 'DEPLOYMENT', 'DETAIL'].map((h) => lines[0].indexOf(h));
    for (const row of rows) {
      for (const s of starts) expect(row[s - 1], `${row}\n${lines[0]}`).toBe(' ');
      for (const s of starts) expect(row[s], `${row}\n${lines[0]}`).not.toBe(' ');
    }
  });
});
