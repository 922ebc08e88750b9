// Output and concurrency at size (issue 8): a 2 MB plan (4 MB in the full mode) and a 100 MB line
// without a newline end right with every line once and in order and bounded memory; the log_line cap;
// 200 attempts at once; an adopted attempt's exit noticed through the file system with no safety pass.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attempt } from '../../src/domain/types.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { ADMIN, fixturePlans, FIXTURES, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';
import { scaled } from '../helpers/full.ts';

/**
 * The flood's size: its stdout lines (8 bytes each) and a 25th of that on stderr; 2 MB by default, the
 * 4 MB soak under LIFELINE_TEST_FULL=1. Each size is many ingestion batches and several log pages, and
 * the memory the ingestion needs does not grow with the log (about 120 MB at 2 MB and at 4 MB): an
 * ingestion that held the log at once (about 1 GB at 4 MB, so some 500 MB at 2 MB) is still far past
 * the 300 MB bound.
 */
const FLOOD_MB = scaled(2, 4);
const FLOOD_OUT = FLOOD_MB * 125_000;
const FLOOD_ERR = FLOOD_OUT / 25;
const FLOOD_LINES = FLOOD_OUT + FLOOD_ERR;

const sh = (script: string) => ({
  deploy: ['/bin/sh', '-c', script],
  teardown: [path.join(FIXTURES, 'ok.sh')],
});
/** A FIFO the gated plans block on (in open) until the test opens it for writing: all go at once. */
const GATE = path.join(os.tmpdir(), `lifeline-gate-${process.pid}-${Date.now()}`);
const gated = (rc: number) => ({ ...sh(`read x < "$GATE"; exit ${rc}`), env: { GATE } });
const plans = {
  gateok: gated(0),
  gatefail: gated(2),
  ...fixturePlans(),
  // FLOOD_OUT lines of 8 bytes on stdout, FLOOD_ERR on stderr
  flood: sh(`seq -f '%07g' 1 ${FLOOD_OUT}; seq -f 'e%06g' 1 ${FLOOD_ERR} >&2`),
  longline: sh("head -c 100000000 /dev/zero | tr '\\0' x; echo after >&2"),
  nap: {
    deploy: [path.join(FIXTURES, 'sleep.sh')],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    // Long enough to outlive a restart (the new instance sees it running some 50 ms after it started;
    // a loaded CI machine takes longer).
    env: { SLEEP_SECONDS: '3' },
  },
  capped: sh("seq 1 5000; seq 1 300 | sed 's/^/err/' >&2"),
};

let engine: Lifeline;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir();
  // The flood's lines (520,000 in the full mode) stay under this cap; the default cap has its own test below.
  engine = await startEngine(dataDir, { plans, durable_commits: false, log_limit: { lines: 1_000_000 } });
});
afterAll(async () => {
  await engine.close();
});

let n = 0;
async function deploy(on: Lifeline, plan: string): Promise<Attempt> {
  const name = `${plan}-${++n}`;
  await on.createDeployment({ name, plan }, OPERATOR);
  return on.startDeploy(name, {}, OPERATOR);
}

async function ended(on: Lifeline, id: string, timeoutMs = 120_000): Promise<Attempt> {
  return waitFor(
    async () => {
      const a = await on.getAttempt(id);
      return a.state !== 'queued' && a.state !== 'running' ? a : null;
    },
    `attempt ${id} to end`,
    timeoutMs,
  );
}

/** The attempt's log_line texts per stream, straight from the table, in seq order. */
async function linesOf(on: Lifeline, attemptId: string): Promise<{ stdout: string[]; stderr: string[] }> {
  const rows = await on.store.db
    .selectFrom('events')
    .select(['data'])
    .where('attempt_id', '=', attemptId)
    .where('type', '=', 'log_line')
    .orderBy('seq')
    .execute();
  const out = { stdout: [] as string[], stderr: [] as string[] };
  for (const r of rows) {
    const d = JSON.parse(r.data) as { stream: 'stdout' | 'stderr'; text: string };
    out[d.stream].push(d.text);
  }
  return out;
}

/** Samples this process's RSS while `fn` runs; returns the largest growth over the start, in MB. */
async function rssGrowth(fn: () => Promise<void>): Promise<number> {
  const start = process.memoryUsage().rss;
  let max = start;
  const t = setInterval(() => (max = Math.max(max, process.memoryUsage().rss)), 50);
  try {
    await fn();
  } finally {
    clearInterval(t);
  }
  return (max - start) / 1e6;
}

describe('output at size', () => {
  it(`a plan printing ${FLOOD_MB} MB: succeeded, every line once and in order per stream, bounded memory`, async () => {
    let a!: Attempt;
    const growth = await rssGrowth(async () => {
      a = await ended(engine, (await deploy(engine, 'flood')).id, 400_000);
    });
    expect(a).toMatchObject({ state: 'succeeded', rc: 0 });
    const { stdout, stderr } = await linesOf(engine, a.id);
    expect(stdout.length).toBe(FLOOD_OUT);
    expect(stdout.every((l, i) => l === String(i + 1).padStart(7, '0'))).toBe(true);
    expect(stderr.length).toBe(FLOOD_ERR);
    expect(stderr.every((l, i) => l === `e${String(i + 1).padStart(6, '0')}`)).toBe(true);
    // The whole log was never held at once: the old ingestion reached about 1 GB at 4 MB (FLOOD_MB).
    expect(growth).toBeLessThan(300);

    // Read by range: pages join to the whole log; a tail is the last lines.
    let text = '';
    let offset = 0;
    for (;;) {
      const page = await engine.readAttemptLog(a.id, offset, { limit: 1_000_000 });
      if (page.text === '') break;
      expect(Buffer.byteLength(page.text)).toBeLessThanOrEqual(1_000_000);
      text += page.text;
      offset = page.next_offset;
    }
    expect(Buffer.byteLength(text)).toBe(FLOOD_LINES * 8);
    const tail = await engine.readAttemptLog(a.id, 0, { tail: 3 });
    expect(tail.next_offset).toBe(FLOOD_LINES * 8);
    expect(tail.text.split('\n').filter(Boolean)).toHaveLength(3);
  }, 600_000);

  it('one 100 MB line without a newline: one log_line cut to 4096 characters, bounded memory', async () => {
    let a!: Attempt;
    const growth = await rssGrowth(async () => {
      a = await ended(engine, (await deploy(engine, 'longline')).id, 400_000);
    });
    expect(a).toMatchObject({ state: 'succeeded', rc: 0 });
    const { stdout, stderr } = await linesOf(engine, a.id);
    expect(stdout).toEqual(['x'.repeat(4096)]);
    expect(stderr).toEqual(['after']);
    expect(growth).toBeLessThan(300);
  }, 600_000);
});

describe('the log_line cap', () => {
  let capEngine: Lifeline;
  beforeAll(async () => {
    capEngine = await startEngine(tempDir(), { plans, log_limit: { lines: 1000 } });
  });
  afterAll(async () => {
    await capEngine.close();
  });

  it('stores up to the cap, says so once, and serves the rest of the output from the run dir', async () => {
    const a = await ended(capEngine, (await deploy(capEngine, 'capped')).id);
    expect(a.state).toBe('succeeded');
    // Stored: 1000 lines, a prefix of each stream (how they interleave depends on the reads).
    const { stdout, stderr } = await linesOf(capEngine, a.id);
    expect(stdout.length + stderr.length).toBe(1000);
    expect(stdout).toEqual(Array.from({ length: stdout.length }, (_, i) => String(i + 1)));
    expect(stderr).toEqual(Array.from({ length: stderr.length }, (_, i) => `err${i + 1}`));
    const events = (
      await capEngine.listEvents({ after: 0, limit: 1000, types: ['runner_event'] })
    ).items.filter((e) => e.attempt_id === a.id && e.type === 'runner_event');
    expect(events).toHaveLength(1);
    expect(events[0].data).toMatchObject({ lifeline: 'log_capped', lines: 1000 });
    // The whole output stays readable: stored lines, then the rest of stdout, then of stderr.
    const whole = await capEngine.readAttemptLog(a.id, 0, {});
    const lines = whole.text.split('\n').filter(Boolean);
    expect(lines).toHaveLength(5300);
    expect(lines.filter((l) => !l.startsWith('err'))).toEqual(
      Array.from({ length: 5000 }, (_, i) => String(i + 1)),
    );
    expect(lines.filter((l) => l.startsWith('err'))).toEqual(
      Array.from({ length: 300 }, (_, i) => `err${i + 1}`),
    );
    const tail = await capEngine.readAttemptLog(a.id, 0, { tail: 2 });
    expect(tail.text).toBe(`${lines.slice(-2).join('\n')}\n`);
    expect(tail.next_offset).toBe(whole.next_offset);
  }, 120_000);
});

describe('many attempts', () => {
  it('200 attempts running at once all end correctly', async () => {
    execFileSync('mkfifo', ['-m', '600', GATE]);
    try {
      const attempts: Attempt[] = [];
      for (let i = 0; i < 200; i++) attempts.push(await deploy(engine, i % 2 ? 'gateok' : 'gatefail'));
      // All 200 running (each blocked opening the gate), then the gate opens for all of them.
      await waitFor(
        async () =>
          (await Promise.all(attempts.map((a) => engine.getAttempt(a.id)))).every(
            (a) => a.state === 'running',
          ),
        'all 200 running',
        300_000,
      );
      const open = () => {
        try {
          fs.closeSync(fs.openSync(GATE, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err; // no reader left
        }
      };
      open();
      const done = await Promise.all(
        attempts.map((a) =>
          waitFor(
            async () => {
              open(); // a plan that reached the gate late still gets through
              const x = await engine.getAttempt(a.id);
              return x.state !== 'queued' && x.state !== 'running' ? x : null;
            },
            `attempt ${a.id} to end`,
            300_000,
          ),
        ),
      );
      done.forEach((a, i) => {
        expect(a.state).toBe(i % 2 ? 'succeeded' : 'failed');
        expect(a.rc).toBe(i % 2 ? 0 : 2);
      });
    } finally {
      fs.rmSync(GATE, { force: true });
    }
  }, 600_000);
});

describe('adopted attempts', () => {
  it("an adopted attempt's exit lands through file-system notification, with no safety pass", async () => {
    const dir = tempDir();
    const first = await startEngine(dir, { plans, reap_interval: '1h' });
    const name = 'adopted';
    await first.createDeployment({ name, plan: 'nap' }, OPERATOR);
    const a = await first.startDeploy(name, {}, ADMIN);
    await waitFor(async () => (await first.getAttempt(a.id)).state === 'running', 'running');
    await first.close();
    // The plan sleeps 3 s; the new instance adopts it at start. It has no child to wait for, no
    // deadline timer before 1 h and no safety pass before 1 h: only inotify on the run dir is left.
    const second = await startEngine(dir, { plans, reap_interval: '1h' });
    try {
      expect((await second.getAttempt(a.id)).state).toBe('running');
      const end = await ended(second, a.id, 20_000);
      expect(end).toMatchObject({ state: 'succeeded', rc: 0, recovered: true });
    } finally {
      await second.close();
    }
  }, 60_000);
});
