// The checks of invariants 10, 11 and 12 (test/helpers/stack-invariants.ts) fail when their rule is
// broken: each is fed a small hand-built snapshot that keeps the rule, then one that breaks it.
import { describe, expect, it } from 'vitest';
import { foldSlots } from '../helpers/gates.ts';
import {
  expectRunFolds,
  expectRunLaunches,
  expectSlots,
  expectStackFolds,
  type GateSnapshot,
} from '../helpers/stack-invariants.ts';

let seq = 0;
const ev = (
  type: string,
  data: Record<string, unknown>,
  ids: { dep?: string; att?: string; stack?: string } = {},
) =>
  ({
    seq: ++seq,
    type,
    deployment_id: ids.dep ?? null,
    attempt_id: ids.att ?? null,
    stack_id: ids.stack ?? null,
    data: JSON.stringify(data),
  }) as unknown as GateSnapshot['events'][number];

/** Stack s (b after a), deploy run r1 that launched a, then b after a's end; key k of limit 1. */
function snapshot(): GateSnapshot {
  seq = 0;
  const launch = (dep: string, att: string) =>
    ev(
      'state_transition',
      { entity: 'deployment', to: 'deploying', reason: 'stack run r1' },
      { dep, att, stack: 's' },
    );
  return {
    deployments: [],
    attempts: [
      { id: 'x1', state: 'succeeded' },
      { id: 'x2', state: 'running' },
    ] as GateSnapshot['attempts'],
    events: [
      ev('state_transition', { entity: 'stack', to: 'pending' }, { stack: 's' }),
      ev('state_transition', { entity: 'run', id: 'r1', to: 'queued', version: 1 }, { stack: 's' }),
      ev('state_transition', { entity: 'run', id: 'r1', to: 'running', version: 2 }, { stack: 's' }),
      ev('state_transition', { entity: 'stack', to: 'deploying' }, { stack: 's' }),
      launch('a', 'ua'),
      ev('attempt_end', {}, { dep: 'a', att: 'ua' }),
      launch('b', 'ub'),
      ev('gate_opened', { gate: 'concurrency', detail: { key: 'k' } }, { dep: 'g1', att: 'x1' }),
      ev('attempt_end', { released_slot: 'k' }, { dep: 'g1', att: 'x1' }),
      ev('gate_opened', { gate: 'concurrency', detail: { key: 'k' } }, { dep: 'g2', att: 'x2' }),
    ],
    stacks: [
      {
        id: 's',
        name: 's',
        state: 'deploying',
        spec: JSON.stringify({ units: [{ key: 'a' }, { key: 'b', after: ['a'] }] }),
      },
    ] as GateSnapshot['stacks'],
    runs: [
      {
        id: 'r1',
        stack_id: 's',
        kind: 'deploy',
        state: 'running',
        version: 4,
        ended_at: null,
        steps: JSON.stringify([
          { key: 'a', index: null, deployment_id: 'a', step: 'succeeded', attempt_id: 'ua' },
          { key: 'b', index: null, deployment_id: 'b', step: 'running', attempt_id: 'ub' },
        ]),
      },
    ] as GateSnapshot['runs'],
    slots: [{ key: 'k', slot: 1, attempt_id: 'x2', since: '' }],
    waits: [],
  };
}
const limit1 = () => 1;

describe('checks of invariants 10, 11, 12', () => {
  it('pass on a snapshot that keeps the rules', () => {
    const s = snapshot();
    expectStackFolds(s);
    expectRunFolds(s);
    expectRunLaunches(s);
    expectSlots(s, limit1);
  });

  it('invariant 10: a stack state other than its fold fails', () => {
    const s = snapshot();
    s.stacks[0].state = 'ready';
    expect(() => expectStackFolds(s)).toThrow(/fold of stack s/);
  });

  it("a run state other than its fold fails, and an ended run's version must be its last transition's", () => {
    const s = snapshot();
    s.runs[0].state = 'succeeded';
    expect(() => expectRunFolds(s)).toThrow(/fold of run r1/);
    const t = snapshot();
    t.runs[0].ended_at = 'now';
    expect(() => expectRunFolds(t)).toThrow(/version of ended run r1/);
  });

  it('invariant 11: a unit launched twice, or before what it comes after ended, fails', () => {
    const twice = snapshot();
    const again = { ...twice.events[6], seq: 99 };
    twice.events.push(again);
    expect(() => expectRunLaunches(twice)).toThrow(/launches of b/);
    const early = snapshot();
    // a's end moves after b's launch
    const end = early.events[5];
    early.events[5] = { ...early.events[6], seq: 6 };
    early.events[6] = { ...end, seq: 7 };
    expect(() => expectRunLaunches(early)).toThrow(/a ended before run r1 launched b/);
    const teardown = snapshot();
    teardown.runs[0].kind = 'teardown'; // then b must end before a launches: a launched first
    expect(() => expectRunLaunches(teardown)).toThrow(/b ended before run r1 launched a/);
  });

  it('invariant 12: two holders of a limit-1 key, slots other than the fold, or a waiter behind an ended holder fail', () => {
    const over = snapshot();
    over.events.splice(8, 1); // x1 never releases: x2 is granted a second slot
    expect(() => expectSlots(over, limit1)).toThrow(/holders of k/);
    const stored = snapshot();
    stored.slots = [];
    expect(() => expectSlots(stored, limit1)).toThrow(/slots held = fold/);
    const behind = snapshot();
    behind.events.pop(); // x2 never got the slot x1 freed, and waits
    behind.slots = [];
    behind.attempts[1].state = 'queued';
    behind.waits = [
      {
        attempt_id: 'x2',
        gate: 'concurrency',
        key: 'k',
        detail: '{}',
        since: '',
        queue_seq: 8,
        opened_at: null,
        expires_at: null,
      },
    ];
    expect(() => expectSlots(behind, limit1)).toThrow(/x2 waits for k while a slot is free/);
  });

  it("a resolve frees only the slot of the deployment's current attempt: an older unknown one keeps its own", () => {
    seq = 0;
    const created = (att: string) =>
      ev('state_transition', { entity: 'attempt', from: null, to: 'queued' }, { dep: 'd', att });
    const events = [
      created('old'),
      ev('gate_opened', { gate: 'concurrency', detail: { key: 'k' } }, { dep: 'd', att: 'old' }),
      created('new'), // an admin forced a new attempt over the unknown one
      ev('gate_opened', { gate: 'concurrency', detail: { key: 'k' } }, { dep: 'd', att: 'new' }),
      ev('state_transition', { entity: 'deployment', trigger: 'resolved' }, { dep: 'd' }),
    ];
    expect([...foldSlots(events, () => 2).get('k')!]).toEqual(['old']);
  });
});
