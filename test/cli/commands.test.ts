// Every command of SPEC §7 (apart from the --follow endings, in follow.test.ts) against a real server:
// output, --json, colours, exit codes. Commands run in-process (helpers.ts); what only the real binary
// shows (its exit status, SIGINT, a terminal, a closed pipe) runs it.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BIN, binCli, cleanEnv, cli, freePort, ROOT, spawnCli, TestServer, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;

beforeAll(async () => {
  server = await TestServer.start();
});

afterAll(async () => {
  await server?.stop();
});

const ANSI = /\x1b\[/;

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs the CLI under `script`, so that its stdout is a terminal. */
function inTty(args: string[], env: Record<string, string | undefined>): { code: number; out: string } {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  try {
    const out = execFileSync('script', ['-qec', cmd, '/dev/null'], {
      cwd: ROOT,
      env: cleanEnv({ LIFELINE_URL: server.url, TERM: 'xterm', ...env }),
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { code: 0, out };
  } catch (err) {
    const e = err as { status: number; stdout: string };
    return { code: e.status, out: e.stdout };
  }
}

describe('create, ls, show', () => {
  it('create prints the new deployment; --json prints the API response', async () => {
    const r = await cli(server, [
      'create',
      'web-1',
      '--plan',
      'ok',
      '--label',
      'team=web',
      '--label',
      'tier=1',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^created web-1 \(dep_\w+\) with plan ok: pending$/m);
    const j = await cli(server, ['create', 'web-2', '--plan', 'quick', '--json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toMatchObject({
      name: 'web-2',
      plan: 'quick',
      state: 'pending',
      version: 1,
    });
  });

  it('ls prints an aligned table with relative times; --state/--plan filter; --json parses', async () => {
    const r = await cli(server, ['ls']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +STATE +PLAN +ATTEMPT +CHANGED +LABELS$/);
    const web1 = lines.find((l) => l.startsWith('web-1 '))!;
    expect(web1).toMatch(/^web-1 +pending +ok +- +(just now|\d+[smh] ago) +team=web,tier=1$/);
    // columns line up: STATE starts at the same place on every row
    const col = lines[0].indexOf('STATE');
    for (const l of lines.slice(1)) expect(l.slice(col)).toMatch(/^(pending|ready|deploying)\b/);

    const filtered = await cli(server, ['ls', '--plan', 'quick', '--json']);
    const items = JSON.parse(filtered.stdout).items as { name: string }[];
    expect(items.map((d) => d.name)).toEqual(['web-2']);
    const none = await cli(server, ['ls', '--state', 'unknown']);
    expect(none.stdout).toBe('No deployments match.\n');
    const bad = await cli(server, ['ls', '--state', 'nonsense']);
    expect(bad.code).toBe(2);
  });

  it('show prints state, a timeline with how long each state lasted, and the attempts', async () => {
    expect((await cli(server, ['deploy', 'web-1', '--follow'])).code).toBe(0);
    const r = await cli(server, ['show', 'web-1']);
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/^web-1 {2}ready$/m);
    expect(out).toMatch(/^ {2}plan +ok$/m);
    expect(out).toMatch(/^ {2}labels +team=web,tier=1$/m);
    expect(out).toMatch(/^Timeline$/m);
    expect(out).toMatch(/^ {2}AT +STATE +LASTED +TRIGGER +BY +ATTEMPT$/m);
    const lasted = String.raw`(\d+\.\ds|\d+m \d\ds)`;
    expect(out).toMatch(
      new RegExp(
        String.raw`^ {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d {2}pending +${lasted} +created +anonymous +-$`,
        'm',
      ),
    );
    expect(out).toMatch(
      new RegExp(String.raw`^ {2}\S+ \S+ {2}deploying +${lasted} +deploy_accepted +anonymous +#1$`, 'm'),
    );
    expect(out).toMatch(/^ {2}\S+ \S+ {2}ready +\S+ so far +deploy_succeeded +runner +#1$/m);
    expect(out).toMatch(/^Attempts$/m);
    expect(out).toMatch(
      /^ {2}#1 +deploy +succeeded +- +0 +anonymous +(just now|\d+[smh] ago) +\d+\.\ds +att_\w+$/m,
    );

    const j = await cli(server, ['show', 'web-1', '--json']);
    const doc = JSON.parse(j.stdout);
    expect(doc).toMatchObject({ name: 'web-1', state: 'ready', current_attempt: { number: 1 } });
    expect(doc.transitions.map((t: { to: string }) => t.to)).toEqual(['pending', 'deploying', 'ready']);
    expect(doc.attempts).toHaveLength(1);
  });
});

describe('params', () => {
  it('--param values are typed by the plan schema', async () => {
    const r = await cli(server, [
      'create',
      'p-1',
      '--plan',
      'params',
      '--param',
      'replicas=3',
      '--param',
      'ratio=0.5',
      '--param',
      'debug=true',
      '--param',
      'tags=["a","b"]',
      '--param',
      'extra=null',
      '--param',
      'name=007',
      '--json',
    ]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).params).toEqual({
      replicas: 3,
      ratio: 0.5,
      debug: true,
      tags: ['a', 'b'],
      extra: null,
      name: '007',
    });
    // a deploy's params are merged over the deployment's, typed the same way, and reach the plan
    const d = await cli(server, [
      'deploy',
      'p-1',
      '--param',
      'replicas=5',
      '--param',
      'extra={"k":1}',
      '--follow',
    ]);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/│ params: \{.*"replicas":5.*\}/);
    expect(d.stdout).toMatch(/"extra":\{"k":1\}/);
  });

  it('a value that does not fit, or an unknown param, is left to the server: VALIDATION, exit 2', async () => {
    const r = await cli(server, ['create', 'p-2', '--plan', 'params', '--param', 'replicas=many']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: VALIDATION: /m);
    expect(r.stderr).toMatch(/replicas/);
    const u = await cli(server, ['create', 'p-3', '--plan', 'params', '--param', 'colour=blue']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/VALIDATION/);
    expect((await cli(server, ['show', 'p-2'])).code).toBe(2); // nothing was created
  });

  it('a malformed --param (no =) is a usage error, exit 2, and nothing is sent', async () => {
    const r = await cli(server, ['create', 'p-4', '--plan', 'params', '--param', 'replicas']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--param <key=value>.*invalid.*expected key=value/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect((await cli(server, ['show', 'p-4'])).stderr).toMatch(/NOT_FOUND/);
  });
});

describe('errors and exit codes', () => {
  it('API errors print the problem code and detail on stderr and exit 2', async () => {
    const missing = await cli(server, ['deploy', 'no-such-thing']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe('error: NOT_FOUND: deployment no-such-thing not found\n');

    const dup = await cli(server, ['create', 'web-1', '--plan', 'ok']);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/^error: DEPLOYMENT_EXISTS: /);

    const plan = await cli(server, ['create', 'x-1', '--plan', 'no-plan']);
    expect(plan.code).toBe(2);
    expect(plan.stderr).toMatch(/^error: PLAN_NOT_FOUND: /);

    const name = await cli(server, ['create', 'Bad_Name', '--plan', 'ok']);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/^error: VALIDATION: /);

    const cancel = await cli(server, ['cancel', 'web-1']);
    expect(cancel.code).toBe(2);
    expect(cancel.stderr).toMatch(/^error: NO_INFLIGHT_ATTEMPT: /);

    const resolve = await cli(server, ['resolve', 'web-1', '--state', 'ready', '--reason', 'x']);
    expect(resolve.code).toBe(2);
    expect(resolve.stderr).toMatch(/^error: INVALID_TRANSITION: /);

    const confirm = await cli(server, ['teardown', 'web-1', '--confirm', 'web-2']);
    expect(confirm.code).toBe(2);
    expect(confirm.stderr).toMatch(/^error: TEARDOWN_CONFIRM_MISMATCH: /);

    const del = await cli(server, ['delete', 'web-1']);
    expect(del.code).toBe(2);
    expect(del.stderr).toMatch(/^error: INVALID_TRANSITION: /);

    const check = await cli(server, ['check', 'web-2']); // plan quick has no check
    expect(check.code).toBe(2);
    expect(check.stderr).toMatch(/^error: INVALID_TRANSITION: /);
  });

  it('usage errors exit 2', async () => {
    for (const args of [
      ['deploy'],
      ['create', 'x-2'],
      ['teardown', 'web-1'],
      ['resolve', 'web-1', '--state', 'gone', '--reason', 'x'],
      ['resolve', 'web-1', '--state', 'ready'],
      ['events', '--after', '-1'],
      ['no-such-command'],
    ]) {
      const r = await cli(server, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/error:/);
    }
    const help = await cli(server, ['--help']);
    expect(help.code).toBe(0);
    for (const c of [
      'serve',
      'create',
      'deploy',
      'teardown',
      'cancel',
      'resolve',
      'check',
      'ls',
      'show',
      'logs',
      'events',
      'delete',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    }
  });

  it('the real binary exits with the code and prints what the in-process run does', async () => {
    const missing = await binCli(server, ['deploy', 'no-such-thing']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe('error: NOT_FOUND: deployment no-such-thing not found\n');
    const usage = await binCli(server, ['no-such-command']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: unknown command 'no-such-command'\nhint: see lifeline --help\n$/);
    const help = await binCli(server, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^ {2}deploy\b/m);
    expect(help.stdout).toMatch(/^ {2}LIFELINE_URL +the server/m);
  });

  it('a server that cannot be reached is a clear message and exit 2', async () => {
    const port = await freePort();
    const r = await cli(`http://127.0.0.1:${port}`, ['ls']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `error: cannot reach the Lifeline server at http://127.0.0.1:${port}: connection refused ` +
        '(is `lifeline serve` running there? set LIFELINE_URL to point elsewhere)\n',
    );
    const bad = await cli('not a url', ['ls']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/LIFELINE_URL is not a URL/);
  });

  it('LIFELINE_TOKEN is sent as a Bearer token', async () => {
    // The test server has no auth, so any token passes; the point is that the header is well-formed.
    const r = await cli(server, ['ls', '--json'], { LIFELINE_TOKEN: 'secret-token' });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).items.length).toBeGreaterThan(0);
  });
});

describe('cancel, delete, check', () => {
  it('cancel of a running attempt, then delete --force of the failed deployment', async () => {
    await cli(server, ['create', 'c-1', '--plan', 'sleep']);
    const d = await cli(server, ['deploy', 'c-1', '--json']);
    const att = JSON.parse(d.stdout);
    expect(att).toMatchObject({ number: 1, kind: 'deploy', state: 'queued' });
    await waitFor(
      async () => (await server.api<{ state: string }>('GET', `/v1/attempts/${att.id}`)).state === 'running',
      'running',
    );
    const c = await cli(server, ['cancel', 'c-1', '--json']);
    expect(c.code).toBe(0);
    expect(JSON.parse(c.stdout)).toMatchObject({ id: att.id });
    await waitFor(
      async () =>
        (await server.api<{ state: string }>('GET', `/v1/attempts/${att.id}`)).state === 'cancelled',
      'cancelled',
    );
    const plain = await cli(server, ['delete', 'c-1']);
    expect(plain.code).toBe(2);
    const forced = await cli(server, ['delete', 'c-1', '--force', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ deleted: true, name: 'c-1' });
  });

  it('check prints the verdict and the state', async () => {
    const r = await cli(server, ['check', 'web-1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('check of web-1: up (rc 0); web-1 is ready\n');
    const nw = await cli(server, ['check', 'web-1', '--no-wait', '--json']);
    expect(JSON.parse(nw.stdout)).toMatchObject({ status: 'accepted' });
  });
});

describe('events', () => {
  it('pages the log; --deployment, --after, --type filter; --json parses', async () => {
    const r = await cli(server, ['events', '--deployment', 'web-1']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SEQ +AT +TYPE +DEPLOYMENT +DETAIL$/);
    expect(r.stdout).toMatch(/^\d+ +\S+ \S+ +deployment_created +web-1 +created with plan ok/m);
    expect(r.stdout).toMatch(
      /state_transition +web-1 +pending → deploying \(deploy_accepted, by anonymous\)/,
    );
    expect(r.stdout).toMatch(/state_transition +web-1 +attempt #1 queued → running/);
    expect(r.stdout).toMatch(/attempt_end +web-1 +attempt #1 deploy ended succeeded rc=0 reason=-/);
    expect(r.stdout).toMatch(/log_line +web-1 +#1 stdout│ deploying web-1 attempt 1 \(deploy\)/);

    const j = await cli(server, ['events', '--deployment', 'web-1', '--json']);
    const page = JSON.parse(j.stdout) as { items: { seq: number; type: string }[]; next_after: number };
    expect(page.items.length).toBeGreaterThan(5);
    expect(page.next_after).toBe(page.items.at(-1)!.seq);

    const after = page.items[2].seq;
    const later = JSON.parse(
      (await cli(server, ['events', '--deployment', 'web-1', '--after', String(after), '--json'])).stdout,
    );
    expect(later.items[0].seq).toBeGreaterThan(after);
    // The same events from there on (a check asked with --no-wait above may append its result between
    // the two reads: only what the first page saw is compared).
    const seen = later.items.filter((e: { seq: number }) => e.seq <= page.next_after);
    expect(seen).toEqual(page.items.slice(3));

    const typed = JSON.parse(
      (await cli(server, ['events', '--type', 'attempt_end,deployment_created', '--limit', '2', '--json']))
        .stdout,
    );
    expect(typed.items).toHaveLength(2);
    for (const e of typed.items) expect(['attempt_end', 'deployment_created']).toContain(e.type);
  });

  it('--follow streams new events as JSON lines until interrupted', async () => {
    await cli(server, ['create', 'ev-1', '--plan', 'quick']);
    const follow = spawnCli(server, ['events', '--follow', '--deployment', 'ev-1', '--json']);
    await follow.waitForOutput(/"deployment_created"/);
    expect((await cli(server, ['deploy', 'ev-1'])).code).toBe(0);
    await follow.waitForOutput(/"attempt_end"/);
    follow.proc.kill('SIGINT');
    const r = await follow.done;
    expect(r.code).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
    expect(events.map((e) => e.type)).toContain('log_line');
  });
});

describe('a reader that stops early', () => {
  it('`events --follow | head -5` ends quietly with 0 at the next write, as Unix tools do', async () => {
    const cmd = `'${process.execPath}' '${BIN}' events --follow 2>"$ERR" | head -5; echo "rc=\${PIPESTATUS[0]}" >&2`;
    const errFile = `${server.dir}/pipe-err.txt`;
    const proc = spawn('bash', ['-c', cmd], {
      cwd: ROOT,
      env: cleanEnv({ LIFELINE_URL: server.url, ERR: errFile }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const done = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    await waitFor(() => out.split('\n').length > 5, 'five lines through head');
    // New events make the follow write again, into the pipe head has closed.
    await cli(server, ['create', 'pipe-1', '--plan', 'quick']);
    await cli(server, ['deploy', 'pipe-1']);
    await done;
    expect(err).toMatch(/rc=0/);
    expect(fs.readFileSync(errFile, 'utf8')).toBe('');
  });
});

describe('colours', () => {
  it('no colour when stdout is not a terminal', async () => {
    const r = await cli(server, ['ls']);
    expect(r.stdout).not.toMatch(ANSI);
    const s = await cli(server, ['show', 'web-1']);
    expect(s.stdout).not.toMatch(ANSI);
  });

  it.runIf(hasScript())('colours on a terminal, and none with NO_COLOR', () => {
    const coloured = inTty(['ls'], {});
    expect(coloured.code).toBe(0);
    expect(coloured.out).toMatch(ANSI);
    expect(coloured.out).toMatch(/\x1b\[32m● ready\x1b\[39m/);
    const plain = inTty(['ls'], { NO_COLOR: '1' });
    expect(plain.code).toBe(0);
    expect(plain.out).not.toMatch(ANSI);
    expect(plain.out).toMatch(/web-1 +ready/);
  });

  it.runIf(hasScript())(
    'deploy --follow on a terminal shows the live status line and keeps the exit code',
    () => {
      const r = inTty(['deploy', 'web-2', '--follow'], {});
      expect(r.code).toBe(0);
      const text = r.out.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');
      expect(text).toMatch(/deploy web-2 · attempt #\d+ \w+ · deployment \w+ · \d\d:\d\d/); // the status line
      expect(r.out).toMatch(/tick 3/);
      // NO_COLOR: no colours and no cursor codes either; the same lines, plain.
      const plain = inTty(['deploy', 'web-2', '--follow'], { NO_COLOR: '1' });
      expect(plain.code).toBe(0);
      expect(plain.out).not.toMatch(/\x1b/);
      expect(plain.out).toMatch(/result: succeeded/);
      const f = inTty(['deploy', 'p-1', '--follow', '--param', 'replicas=0'], { NO_COLOR: '1' });
      expect(f.code).toBe(2);
      expect(f.out).toMatch(/error: VALIDATION/);
    },
  );
});
