// `lifeline stack deploy|teardown|cancel|runs` and `--follow` (SPEC §12.5): the CLI (in-process) against a
// real server. --follow prints a line per unit change when piped and exits 0 succeeded, 1 failed or
// cancelled; a teardown whose confirm does not match is refused with exit 2; runs lists newest first.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, count, startCli, TestServer, waitFor } from './helpers.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let server: TestServer;
beforeAll(async () => {
  server = await TestServer.start();
});
afterAll(async () => {
  await server?.stop();
});

async function createStack(name: string, units: string): Promise<void> {
  const file = path.join(server.dir, `${name}.yaml`);
  fs.writeFileSync(file, `name: ${name}\nunits:\n${units}`);
  const res = await cli(server, ['stack', 'create', '-f', file]);
  expect(res.stderr).toBe('');
  expect(res.code).toBe(0);
}

describe('lifeline stack runs', () => {
  it('deploy --follow exits 0 showing every unit; teardown needs the name; runs lists newest first', async () => {
    await createStack(
      'r1',
      `  - key: net
    plan: ok
  - key: vm
    plan: ok
    count: 2
    after: [net]
  - key: fin
    plan: quick
    after: [vm]
`,
    );
    const dep = await cli(server, ['stack', 'deploy', 'r1', '--follow']);
    expect(dep.stderr).toBe('');
    expect(dep.code).toBe(0);
    for (const unit of ['r1-net', 'r1-vm-1', 'r1-vm-2', 'r1-fin']) {
      // Its change lines while the run went on, and its final row: ready, succeeded, the run's attempt.
      expect(dep.stdout).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d\\] \\S+ ${unit} `, 'm'));
      expect(dep.stdout).toMatch(
        new RegExp(`^\\S+\\s+${unit}\\s+ready\\s+succeeded\\s+#1 deploy succeeded$`, 'm'),
      );
    }
    expect(dep.stdout).toMatch(/^result: succeeded {2}run=run_\S+ {2}units: 4 succeeded$/m);
    const runId = /run=(run_\S+)/.exec(dep.stdout)![1];

    const mismatch = await cli(server, ['stack', 'teardown', 'r1', '--confirm', 'r2']);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toContain('TEARDOWN_CONFIRM_MISMATCH');
    const missing = await cli(server, ['stack', 'teardown', 'r1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/required option '--confirm <name>'/);
    expect((await cli(server, ['stack', 'runs', 'r1'])).stdout).not.toMatch(/teardown/);

    const td = await cli(server, ['stack', 'teardown', 'r1', '--confirm', 'r1', '--follow']);
    expect(td.code).toBe(0);
    expect(td.stdout).toMatch(/^\S+\s+r1-net\s+torn_down\s+succeeded\s+#2 teardown succeeded$/m);

    const runs = await cli(server, ['stack', 'runs', 'r1']);
    expect(runs.code).toBe(0);
    const lines = runs.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^RUN\s+KIND\s+STATE\s+UNITS\s+ACTOR/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(1, 4))).toEqual([
      ['teardown', 'succeeded', '4/4'],
      ['deploy', 'succeeded', '4/4'],
    ]);
    expect(lines[2].startsWith(runId)).toBe(true);
    const json = JSON.parse((await cli(server, ['stack', 'runs', 'r1', '--json'])).stdout);
    expect(json.items.map((r: { kind: string }) => r.kind)).toEqual(['teardown', 'deploy']);
  });

  it('a failing unit makes --follow exit 1; what comes after it is skipped', async () => {
    await createStack(
      'r2',
      `  - key: net
    plan: fail
  - key: vm
    plan: ok
    after: [net]
`,
    );
    const res = await cli(server, ['stack', 'deploy', 'r2', '--follow']);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^\S+\s+r2-net\s+failed\s+failed\s+#1 deploy failed$/m);
    expect(res.stdout).toMatch(/^\S+\s+r2-vm\s+pending\s+skipped\s+-$/m);
    expect(res.stdout).toMatch(/^result: failed {2}run=\S+ {2}units: 1 failed, 1 skipped$/m);
  });

  it('cancel: show prints the steps of the active run; cancel --follow exits 1 once it is cancelled', async () => {
    await createStack(
      'r3',
      `  - key: slow
    plan: sleep
  - key: after
    plan: ok
    after: [slow]
`,
    );
    const started = await cli(server, ['stack', 'deploy', 'r3']);
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^started deploy run run_\S+ of r3: (queued|running), 2 of 2 units$/m);

    const show = await waitFor(async () => {
      const s = await cli(server, ['stack', 'show', 'r3']);
      return /r3-slow\s+deploying\s+#1 deploy running\s+launched/.test(s.stdout) ? s : null;
    }, 'the slow unit running');
    expect(show.stdout).toMatch(/^DEPTH\s+UNIT\s+STATE\s+ATTEMPT\s+STEP\s+AFTER/m);
    expect(show.stdout).toMatch(/r3-after\s+pending\s+-\s+waiting\s+slow/);

    const cancel = await cli(server, ['stack', 'cancel', 'r3', '--follow']);
    expect(cancel.code).toBe(1);
    expect(cancel.stdout).toMatch(/^\S+\s+r3-slow\s+failed\s+failed\s+#1 deploy cancelled$/m);
    expect(cancel.stdout).toMatch(/^result: cancelled /m);

    // Nothing is active any more: a second cancel is refused, and the run is listed cancelled.
    const again = await cli(server, ['stack', 'cancel', 'r3']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('NO_ACTIVE_RUN');
    expect((await cli(server, ['stack', 'runs', 'r3'])).stdout).toMatch(
      /^run_\S+\s+deploy\s+cancelled\s+0\/2/m,
    );
  });

  it('--follow survives a server restart: resumes by Last-Event-ID, no change printed twice, exit 0', async () => {
    await createStack(
      'r4',
      `  - key: slow
    plan: slow_ticker
  - key: last
    plan: ok
    after: [slow]
`,
    );
    const follow = startCli(server, ['stack', 'deploy', 'r4', '--follow']);
    await follow.waitForOutput(/ slow r4-slow deploying launched #1 deploy running\n/);
    await server.stop('SIGTERM');
    await server.boot();
    const r = await follow.done;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/connection to the server lost .*reconnecting/);
    expect(count(r.stdout, 'slow r4-slow deploying launched #1 deploy running')).toBe(1);
    expect(r.stdout.match(/^\[\d\d:\d\d\] run run_\S+ deploy succeeded$/gm)).toHaveLength(1);
    expect(count(r.stdout, 'slow r4-slow ready succeeded #1 deploy succeeded')).toBe(1);
    expect(r.stdout).toMatch(/^\S+\s+r4-last\s+ready\s+succeeded\s+#1 deploy succeeded$/m);
    expect(r.stdout).toMatch(/^result: succeeded {2}run=\S+ {2}units: 2 succeeded$/m);
  });
});
