// The deployment page's event reducer (web/js/views/deployment/reducer.js) in Node, no browser: the model
// it builds from the first reads and each stream event, where the stream starts, and that it never mutates
// what it was given (the page keeps the old model until the step returns).
import { describe, expect, it } from 'vitest';
import { importWeb, type StreamEvent } from './web-module.ts';

interface Attempt {
  id: string;
  number: number | null;
  kind: string;
  state: string;
  reason?: string | null;
}
interface Deployment {
  id: string;
  name: string;
  plan: string;
  state: string;
  version: number;
  state_changed_at: string;
  updated_at: string;
  current_attempt: Attempt | null;
}
interface Transition {
  seq: number;
  at: string;
  from: string | null;
  to: string;
  trigger: string;
  reason: string | null;
  actor: string;
  attempt_id: string | null;
}
interface Model {
  dep: Deployment;
  transitions: Transition[];
  attempts: Attempt[];
  lastSeq: number;
  deleted: boolean;
}
interface Changes {
  head?: boolean;
  actions?: boolean;
  timeline?: boolean;
  attempts?: boolean;
  logTitle?: boolean;
  callouts?: boolean;
  refresh?: boolean;
  followAttempt?: string | null;
  announce?: string;
  toast?: { text: string; kind: string };
}
interface Step {
  model: Model;
  changes: Changes;
}
interface Reducer {
  initialModel(reads: { deployment: Deployment; transitions: Transition[]; attempts: Attempt[] }): Model;
  currentAttempt(model: Model): Attempt | null;
  isActive(model: Model): boolean;
  streamStart(model: Model): { after: number; logAttempt: string | null; logMode: 'events' | 'fetch' };
  applyEvent(model: Model, ev: StreamEvent): Step;
  markDeleted(model: Model): Step;
  applyRefresh(model: Model, deployment: Deployment, attempts: Attempt[]): Model;
  askedCheck(model: Model, asked: boolean): Model;
}

const r = await importWeb<Reducer>('views/deployment/reducer.js');

const T0 = '2026-01-01T10:00:00.000Z';
const T1 = '2026-01-01T10:01:00.000Z';
const T2 = '2026-01-01T10:02:00.000Z';

function deployment(over: Partial<Deployment> = {}): Deployment {
  return {
    id: 'dep_1',
    name: 'web-1',
    plan: 'steps',
    state: 'pending',
    version: 1,
    state_changed_at: T0,
    updated_at: T0,
    current_attempt: null,
    ...over,
  };
}

function transition(seq: number, to: string, over: Partial<Transition> = {}): Transition {
  return {
    seq,
    at: T0,
    from: null,
    to,
    trigger: 'created',
    reason: null,
    actor: 'admin',
    attempt_id: null,
    ...over,
  };
}

function stateEvent(
  seq: number,
  data: Record<string, unknown>,
  attemptId: string | null = null,
): StreamEvent {
  return { seq, type: 'state_transition', at: T1, deployment_id: 'dep_1', attempt_id: attemptId, data };
}

/** Deep-freezes what the reducer is given, so that any mutation of its input throws. */
function frozen<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) frozen(v);
    Object.freeze(value);
  }
  return value;
}

const fresh = () =>
  frozen(
    r.initialModel({
      deployment: deployment(),
      transitions: [transition(3, 'pending'), transition(1, 'pending')],
      attempts: [],
    }),
  );

describe('deployment reducer: first reads', () => {
  it('starts after the newest transition read', () => {
    const model = fresh();
    expect(model.lastSeq).toBe(3);
    expect(model.deleted).toBe(false);
    expect(r.streamStart(model)).toEqual({ after: 3, logAttempt: null, logMode: 'events' });
  });

  it('while an attempt runs, starts the stream at its acceptance so all its log lines are still ahead', () => {
    const running: Attempt = { id: 'att_2', number: 2, kind: 'deploy', state: 'running' };
    const model = frozen(
      r.initialModel({
        deployment: deployment({ state: 'deploying', version: 4, current_attempt: running }),
        transitions: [
          transition(1, 'pending'),
          transition(5, 'deploying', { attempt_id: 'att_2', trigger: 'deploy_accepted' }),
          transition(9, 'deploying', { attempt_id: 'att_other' }),
        ],
        attempts: [running],
      }),
    );
    expect(r.isActive(model)).toBe(true);
    expect(r.streamStart(model)).toEqual({ after: 5, logAttempt: 'att_2', logMode: 'events' });
  });

  it('reads a finished attempt’s log whole and starts the stream after the last transition', () => {
    const done: Attempt = { id: 'att_1', number: 1, kind: 'deploy', state: 'succeeded' };
    const model = frozen(
      r.initialModel({
        deployment: deployment({ state: 'ready', current_attempt: done }),
        transitions: [transition(1, 'pending'), transition(2, 'deploying', { attempt_id: 'att_1' })],
        attempts: [done],
      }),
    );
    expect(r.isActive(model)).toBe(false);
    expect(r.streamStart(model)).toEqual({ after: 2, logAttempt: 'att_1', logMode: 'fetch' });
  });
});

describe('deployment reducer: events', () => {
  it('a deploy accepted while the page is open: new state, a timeline entry, and an attempt to follow', () => {
    const before = fresh();
    const { model, changes } = r.applyEvent(
      before,
      stateEvent(
        4,
        {
          entity: 'deployment',
          from: 'pending',
          to: 'deploying',
          trigger: 'deploy_accepted',
          actor: 'ann',
          version: 2,
        },
        'att_1',
      ),
    );
    expect(model.dep).toMatchObject({ state: 'deploying', version: 2, state_changed_at: T1, updated_at: T1 });
    expect(r.currentAttempt(model)).toEqual({ id: 'att_1', number: null, kind: 'deploy', state: 'queued' });
    expect(model.lastSeq).toBe(4);
    expect(model.transitions.at(-1)).toEqual({
      seq: 4,
      at: T1,
      from: 'pending',
      to: 'deploying',
      trigger: 'deploy_accepted',
      reason: null,
      actor: 'ann',
      attempt_id: 'att_1',
    });
    expect(changes).toMatchObject({
      head: true,
      actions: true,
      timeline: true,
      refresh: true,
      followAttempt: 'att_1',
      announce: 'web-1 is now deploying',
    });
    expect(before.dep.state).toBe('pending');
  });

  it('a teardown accepted makes a teardown attempt', () => {
    const { model } = r.applyEvent(
      fresh(),
      stateEvent(
        4,
        { entity: 'deployment', to: 'tearing_down', trigger: 'teardown_accepted', version: 2 },
        'att_9',
      ),
    );
    expect(r.currentAttempt(model)?.kind).toBe('teardown');
    expect(r.isActive(model)).toBe(true);
  });

  it('ignores a transition it read already (the stream may start before the last one read)', () => {
    const before = fresh();
    const step = r.applyEvent(
      before,
      stateEvent(3, { entity: 'deployment', to: 'deploying', version: 2 }, 'a'),
    );
    expect(step.model).toBe(before);
    expect(step.changes).toEqual({});
  });

  it('records an older version in the timeline without moving the shown state back', () => {
    const model0 = frozen({ ...fresh(), dep: deployment({ state: 'ready', version: 5 }) });
    const { model, changes } = r.applyEvent(
      model0,
      stateEvent(7, { entity: 'deployment', from: 'deploying', to: 'failed', version: 4 }),
    );
    expect(model.dep.state).toBe('ready');
    expect(model.transitions.map((t) => t.seq)).toEqual([3, 1, 7]);
    expect(changes.followAttempt).toBeNull();
    expect(changes.announce).toBe('web-1 is now ready');
  });

  it('an attempt’s transition moves that attempt and the current attempt, keeping its reason', () => {
    const cur: Attempt = { id: 'att_1', number: 1, kind: 'deploy', state: 'running' };
    const other: Attempt = { id: 'att_0', number: 0, kind: 'deploy', state: 'failed' };
    const model0 = frozen(
      r.initialModel({
        deployment: deployment({ state: 'deploying', current_attempt: cur }),
        transitions: [],
        attempts: [cur, other],
      }),
    );
    const { model, changes } = r.applyEvent(
      model0,
      stateEvent(8, { entity: 'attempt', from: 'running', to: 'unknown', reason: 'runner_lost' }, 'att_1'),
    );
    expect(model.attempts[0]).toEqual({ ...cur, state: 'unknown', reason: 'runner_lost' });
    expect(model.attempts[1]).toBe(other);
    expect(r.currentAttempt(model)?.state).toBe('unknown');
    expect(changes).toEqual({ attempts: true, head: true, logTitle: true, refresh: true });
    expect(model0.attempts[0].state).toBe('running');
  });

  it('an attempt transition without a reason keeps the attempt’s reason', () => {
    const a: Attempt = { id: 'att_1', number: 1, kind: 'deploy', state: 'running', reason: 'timeout' };
    const model0 = frozen(r.initialModel({ deployment: deployment(), transitions: [], attempts: [a] }));
    const { model } = r.applyEvent(model0, stateEvent(2, { entity: 'attempt', to: 'failed' }, 'att_1'));
    expect(model.attempts[0]).toEqual({ ...a, state: 'failed' });
    expect(r.currentAttempt(model)).toBeNull();
  });

  it('the result of a check asked for on this page is a toast, an error when it failed', () => {
    const ev = (verdict?: string, rc?: number): StreamEvent => ({
      seq: 9,
      type: 'check_result',
      at: T2,
      data: { verdict, rc },
    });
    const asked = frozen(r.askedCheck(fresh(), true));
    const step = r.applyEvent(asked, ev('failed', 3));
    expect(step.changes).toEqual({
      refresh: true,
      toast: { text: 'Check of web-1: failed (rc 3)', kind: 'error' },
    });
    // Told once: the next result (someone else's check) is not.
    expect(r.applyEvent(step.model, ev('up', 0)).changes).toEqual({ refresh: true });
    expect(r.applyEvent(asked, ev()).changes.toast).toEqual({
      text: 'Check of web-1: done (rc ?)',
      kind: 'info',
    });
  });

  it('a check nobody here asked for, or the verifying check after an exit 0, is not a toast', () => {
    const verifying: StreamEvent = {
      seq: 9,
      type: 'check_result',
      at: T2,
      attempt_id: 'att_1',
      data: { verdict: 'up', rc: 0, actor: 'runner', verify: 'deploy' },
    };
    expect(r.applyEvent(fresh(), verifying).changes).toEqual({ refresh: true });
    expect(r.applyEvent(frozen(r.askedCheck(fresh(), true)), verifying).changes).toEqual({ refresh: true });
    const other = { ...verifying, attempt_id: null, data: { verdict: 'up', rc: 0, actor: 'ci' } };
    expect(r.applyEvent(fresh(), other).changes).toEqual({ refresh: true });
    // A refused request takes the ask back.
    const backed = r.askedCheck(r.askedCheck(fresh(), true), false);
    expect(r.applyEvent(backed, other).changes).toEqual({ refresh: true });
  });

  it('attempt start and end only ask for a refresh; other events change nothing', () => {
    const model = fresh();
    expect(r.applyEvent(model, { seq: 9, type: 'attempt_start', at: T2 })).toEqual({
      model,
      changes: { refresh: true },
    });
    expect(r.applyEvent(model, { seq: 9, type: 'attempt_end', at: T2 })).toEqual({
      model,
      changes: { refresh: true },
    });
    expect(r.applyEvent(model, { seq: 9, type: 'log_line', at: T2, data: { text: 'x' } })).toEqual({
      model,
      changes: {},
    });
  });

  it('deleted once: the second notice (event, 404 or the stream going away) changes nothing', () => {
    const first = r.applyEvent(fresh(), { seq: 9, type: 'deployment_deleted', at: T2 });
    expect(first.model.deleted).toBe(true);
    expect(first.changes).toEqual({ callouts: true, actions: true, announce: 'web-1 was deleted' });
    const second = r.markDeleted(frozen(first.model));
    expect(second.model).toBe(first.model);
    expect(second.changes).toEqual({});
  });
});

describe('deployment reducer: refresh', () => {
  it('takes the fresh attempts, and the fresh deployment unless it is older than the one shown', () => {
    const model0 = frozen({ ...fresh(), dep: deployment({ state: 'ready', version: 5 }) });
    const attempts: Attempt[] = [{ id: 'att_1', number: 1, kind: 'deploy', state: 'succeeded' }];
    const older = r.applyRefresh(model0, deployment({ state: 'deploying', version: 4 }), attempts);
    expect(older.dep).toBe(model0.dep);
    expect(older.attempts).toBe(attempts);
    const same = deployment({ state: 'ready', version: 5, current_attempt: attempts[0] });
    expect(r.applyRefresh(model0, same, attempts).dep).toBe(same);
  });
});

describe('deployment reducer: a whole deploy, event by event', () => {
  it('ends ready with the timeline of every transition in stream order', () => {
    const events: StreamEvent[] = [
      stateEvent(
        4,
        { entity: 'deployment', from: 'pending', to: 'deploying', trigger: 'deploy_accepted', version: 2 },
        'a1',
      ),
      stateEvent(5, { entity: 'attempt', from: 'queued', to: 'running' }, 'a1'),
      { seq: 6, type: 'attempt_start', at: T1, attempt_id: 'a1' },
      { seq: 7, type: 'log_line', at: T1, attempt_id: 'a1', data: { text: 'hello' } },
      stateEvent(8, { entity: 'attempt', from: 'running', to: 'succeeded' }, 'a1'),
      stateEvent(
        9,
        { entity: 'deployment', from: 'deploying', to: 'ready', trigger: 'deploy_succeeded', version: 3 },
        'a1',
      ),
      stateEvent(
        9,
        { entity: 'deployment', from: 'deploying', to: 'ready', trigger: 'deploy_succeeded', version: 3 },
        'a1',
      ),
    ];
    let model = fresh();
    const follows: string[] = [];
    for (const ev of events) {
      const step = r.applyEvent(frozen(model), ev);
      if (step.changes.followAttempt) follows.push(step.changes.followAttempt);
      model = step.model;
    }
    expect(model.dep.state).toBe('ready');
    expect(model.dep.version).toBe(3);
    expect(r.currentAttempt(model)).toEqual({ id: 'a1', number: null, kind: 'deploy', state: 'succeeded' });
    expect(model.transitions.map((t) => `${t.seq}:${t.to}`)).toEqual([
      '3:pending',
      '1:pending',
      '4:deploying',
      '9:ready',
    ]);
    expect(follows).toEqual(['a1']);
    expect(r.isActive(model)).toBe(false);
  });
});
