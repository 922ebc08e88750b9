// A short attempt's start and end in one commit (src/lifecycle/start-and-end.ts): when the watcher's
// first look finds the exit record already written, no output and no check to run. The commit carries
// the same events, in the same order, as the two writes apart; everything else still takes two.
import { afterEach, describe, expect, it } from 'vitest';
import type { LifelineEvent } from '../../src/domain/types.ts';
import type { Ctx } from '../../src/lifecycle/context.ts';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { DIALECTS, fixturePlans, OPERATOR, startEngine, tempDir, waitFor } from '../helpers/engine.ts';

let engine: Lifeline | null = null;
afterEach(async () => {
  await engine?.close();
  engine = null;
});

/** Every commit's events, as the engine's bus hands them on. */
function recordCommits(e: Lifeline): LifelineEvent[][] {
  const commits: LifelineEvent[][] = [];
  const bus = (e as unknown as { ctx: Ctx }).ctx.bus;
  const before = bus.onCommit;
  bus.onCommit = (events) => {
    commits.push(events);
    before?.(events);
  };
  return commits;
}

const commitOf = (commits: LifelineEvent[][], type: string, attempt: string) =>
  commits.findIndex((c) => c.some((ev) => ev.type === type && ev.attempt_id === attempt));

describe.each(DIALECTS)('start and end in one commit (%s)', (dialect) => {
  it('a quiet plan that has exited when first looked at: one commit, the events of both writes in order', async () => {
    const plans = { ...fixturePlans(), quiet: { deploy: ['/bin/true'], teardown: ['/bin/false'] } };
    engine = await startEngine(tempDir(), { plans }, dialect);
    const commits = recordCommits(engine);
    // Twelve at once, as a busy server sees them: a look that comes after the plan's exit is the rule
    // then (a lone attempt is often looked at between its start and its exit: two commits).
    const names = Array.from({ length: 12 }, (_, i) => `q-${i}`);
    for (const name of names) await engine.createDeployment({ name, plan: 'quiet' }, OPERATOR);
    const attempts = (await Promise.all(names.map((n) => engine!.startDeploy(n, {}, OPERATOR)))).map(
      (a) => a.id,
    );
    const all = (state: string) => async () =>
      (await Promise.all(names.map((n) => engine!.getDeployment(n)))).every((d) => d.state === state);
    await waitFor(all('ready'), 'all ready');
    // A failing end takes the same way (exit 1: no check to run).
    const teardowns = names.map((n) => engine!.teardown(n, { confirm: n }, OPERATOR));
    attempts.push(...(await Promise.all(teardowns)).map((a) => a.id));
    await waitFor(all('failed'), 'all failed');
    const joint = attempts.filter((a) => {
      const start = commitOf(commits, 'attempt_start', a);
      return start >= 0 && start === commitOf(commits, 'attempt_end', a);
    });
    // Most in practice; one looked at before its exit record takes two commits.
    expect(joint.length).toBeGreaterThan(0);
    for (const a of joint) {
      const commit = commits[commitOf(commits, 'attempt_start', a)];
      const mine = commit.filter((ev) => ev.attempt_id === a);
      expect(mine.map((ev) => ev.type)).toEqual([
        'state_transition',
        'attempt_start',
        'state_transition',
        'state_transition',
        'attempt_end',
      ]);
      expect(mine[0].data).toMatchObject({ entity: 'attempt', from: 'queued', to: 'running' });
      expect(mine[2].data).toMatchObject({ entity: 'attempt', from: 'running' });
      const seqs = commit.map((ev) => ev.seq);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
    }
    for (const a of attempts) {
      const att = await engine.getAttempt(a);
      expect(att.started_at).not.toBeNull();
      expect(Date.parse(att.ended_at!)).toBeGreaterThanOrEqual(Date.parse(att.started_at!));
    }
    const { items } = await engine.listEvents({ limit: 1000 });
    expect(items.map((e) => e.seq)).toEqual(items.map((_, i) => i + 1));
  });

  it('output to read or a check to run: the start and the end are two commits', async () => {
    engine = await startEngine(tempDir(), {}, dialect);
    const commits = recordCommits(engine);
    await engine.createDeployment({ name: 'ok-1', plan: 'ok' }, OPERATOR);
    const att = await engine.startDeploy('ok-1', {}, OPERATOR);
    await waitFor(async () => (await engine!.getDeployment('ok-1')).state === 'ready', 'ready');
    const start = commitOf(commits, 'attempt_start', att.id);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(commitOf(commits, 'attempt_end', att.id)).toBeGreaterThan(start);
    expect(commitOf(commits, 'check_result', att.id)).toBeGreaterThan(start);
    expect((await engine.readAttemptLog(att.id)).text).toContain('deploying ok-1 attempt 1 (deploy)');
  });
});
