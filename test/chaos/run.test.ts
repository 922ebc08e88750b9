// Keeps `npm run chaos` (chaos/run.ts, docs/reliability.md) from rotting: a very short run on SQLite
// through the real entry point must exit 0 with a summary that shows load, faults and zero violations.
// The longer runs on each store are CI's (.ci/run), not this suite's. Here (vitest's build project,
// LIFELINE_TEST_DIST=1) its servers run the compiled dist/, as the other multi-server tests' do.
// 8 s of load from two workers: with seed 7 the first fault (an instance SIGKILLed) comes about 3 s in.
// The settle that follows waits out what the load queued behind the limit-1 slot and the approvals it
// left unanswered (they expire after 15 s): the more load, the longer the settle (12 s from three
// workers took it to 30-60 s).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('npm run chaos', () => {
  it('a short SQLite run exits 0 and reports zero violations and zero 500s', async () => {
    const proc = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'chaos/run.ts', '--store', 'sqlite'],
        ...['--duration', '8s', '--workers', '2', '--seed', '7'],
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    proc.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    expect(code, out).toBe(0);
    const line = out.split('\n').find((l) => l.startsWith('CHAOS_SUMMARY '));
    expect(line, out).toBeDefined();
    const s = JSON.parse(line!.slice('CHAOS_SUMMARY '.length));
    expect(s).toMatchObject({ store: 'sqlite', seed: 7, ok: true, server_errors: 0 });
    expect(s.invariants.violations, s.invariants.details.join('\n')).toBe(0);
    expect(s.invariants.checked.events).toBeGreaterThan(0);
    expect(s.operations.total).toBeGreaterThan(0);
    const c = s.crashes;
    const faults =
      c.instances_killed + c.plans_killed + c.plans_and_supervisors_killed + c.supervisors_killed;
    expect(faults, 'faults injected').toBeGreaterThan(0);
    expect(s.outcomes.attempts).toBeGreaterThan(0);
    expect(s.settle.settled).toBe(true);
  }, 300_000);
});
