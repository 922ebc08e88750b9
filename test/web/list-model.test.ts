// The deployments list's rules (web/js/views/list/model.js) in Node, no browser: filters to and from the
// address, which rows show and in what order, what each stream event does to a row, and the labels input.
import { describe, expect, it } from 'vitest';
import { importWeb, type StreamEvent } from './web-module.ts';

interface Row {
  id: string;
  name: string;
  plan: string;
  state: string;
  version: number;
  created_at: string;
  updated_at: string;
  state_changed_at: string;
  current_attempt: { id: string; number: number | null; kind: string; state: string } | null;
}
interface Filters {
  state: string;
  plan: string;
}
interface ListModel {
  NAME_RE: RegExp;
  parseFilters(params: URLSearchParams): Filters;
  filtersHash(filters: Filters): string;
  matches(filters: Filters, d: Row): boolean;
  newestFirst(rows: Iterable<Row>): Row[];
  countText(shown: number, more: boolean): string;
  refreshed(have: Row | undefined, d: Row, filters: Filters): 'skip' | 'add' | 'update';
  listEvent(
    have: Row | undefined,
    filters: Filters,
    ev: StreamEvent,
  ): { row?: Row; remove?: boolean; fetch?: boolean; announce?: string | null };
  parseLabels(text: string): Record<string, string> | undefined;
}

const m = await importWeb<ListModel>('views/list/model.js');

const T0 = '2026-01-01T10:00:00.000Z';
const T1 = '2026-01-01T10:01:00.000Z';
const none: Filters = { state: '', plan: '' };

function row(over: Partial<Row> = {}): Row {
  return Object.freeze({
    id: 'dep_1',
    name: 'web-1',
    plan: 'steps',
    state: 'ready',
    version: 3,
    created_at: T0,
    updated_at: T0,
    state_changed_at: T0,
    current_attempt: null,
    ...over,
  });
}

const transition = (data: Record<string, unknown>, attemptId: string | null = null): StreamEvent => ({
  seq: 10,
  type: 'state_transition',
  at: T1,
  deployment_id: 'dep_1',
  attempt_id: attemptId,
  data,
});

describe('list filters', () => {
  it('reads state and plan from the route, and drops a state that does not exist', () => {
    expect(m.parseFilters(new URLSearchParams('state=ready&plan=steps'))).toEqual({
      state: 'ready',
      plan: 'steps',
    });
    expect(m.parseFilters(new URLSearchParams('state=bogus'))).toEqual({ state: '', plan: '' });
    expect(m.parseFilters(new URLSearchParams(''))).toEqual(none);
  });

  it('writes them back into the route, leaving out empty ones', () => {
    expect(m.filtersHash(none)).toBe('#/');
    expect(m.filtersHash({ state: 'torn_down', plan: '' })).toBe('#/?state=torn_down');
    expect(m.filtersHash({ state: 'ready', plan: 'a b' })).toBe('#/?state=ready&plan=a+b');
    const back = m.filtersHash({ state: 'failed', plan: 'x&y' }).split('?')[1];
    expect(m.parseFilters(new URLSearchParams(back))).toEqual({ state: 'failed', plan: 'x&y' });
  });

  it('shows a row only when it matches every filter set', () => {
    const d = row({ state: 'ready', plan: 'steps' });
    expect(m.matches(none, d)).toBe(true);
    expect(m.matches({ state: 'ready', plan: '' }, d)).toBe(true);
    expect(m.matches({ state: 'ready', plan: 'other' }, d)).toBe(false);
    expect(m.matches({ state: 'failed', plan: 'steps' }, d)).toBe(false);
  });
});

describe('list order and count', () => {
  it('newest first, the id breaking ties, without touching the input', () => {
    const a = row({ id: 'a', created_at: T0 });
    const b = row({ id: 'b', created_at: T0 });
    const c = row({ id: 'c', created_at: T1 });
    const input = [a, c, b];
    expect(m.newestFirst(input).map((d) => d.id)).toEqual(['c', 'b', 'a']);
    expect(input.map((d) => d.id)).toEqual(['a', 'c', 'b']);
  });

  it('counts in words, with + while there are more pages', () => {
    expect(m.countText(1, false)).toBe('1 deployment');
    expect(m.countText(0, false)).toBe('0 deployments');
    expect(m.countText(100, true)).toBe('100+ deployments');
  });

  it('takes a fresh read unless the row shown is newer, and adds a new one only if it matches', () => {
    const have = row({ version: 5 });
    expect(m.refreshed(have, row({ version: 4 }), none)).toBe('skip');
    expect(m.refreshed(have, row({ version: 5 }), none)).toBe('update');
    expect(m.refreshed(undefined, row(), none)).toBe('add');
    expect(m.refreshed(undefined, row({ state: 'ready' }), { state: 'failed', plan: '' })).toBe('skip');
  });
});

describe('list events', () => {
  it('a deployment created is read, unless it is of another plan than the filter or already shown', () => {
    const ev = (plan: string): StreamEvent => ({
      seq: 1,
      type: 'deployment_created',
      at: T1,
      deployment_id: 'dep_1',
      data: { plan },
    });
    expect(m.listEvent(undefined, none, ev('steps'))).toEqual({ fetch: true });
    expect(m.listEvent(undefined, { state: '', plan: 'other' }, ev('steps'))).toEqual({ fetch: false });
    expect(m.listEvent(row(), none, ev('steps'))).toEqual({ fetch: false });
  });

  it('a deployment deleted removes its row if there is one', () => {
    const ev: StreamEvent = { seq: 2, type: 'deployment_deleted', at: T1, deployment_id: 'dep_1' };
    expect(m.listEvent(row(), none, ev)).toEqual({ remove: true });
    expect(m.listEvent(undefined, none, ev)).toEqual({ remove: false });
  });

  it('a transition moves the row, starts its new attempt, announces it and reads the rest', () => {
    const have = row({ state: 'ready', version: 3 });
    const out = m.listEvent(
      have,
      none,
      transition({ entity: 'deployment', from: 'ready', to: 'tearing_down', version: 4 }, 'att_2'),
    );
    expect(out.row).toEqual({
      ...have,
      state: 'tearing_down',
      version: 4,
      state_changed_at: T1,
      updated_at: T1,
      current_attempt: { id: 'att_2', number: null, kind: 'teardown', state: 'queued' },
    });
    expect(out.announce).toBe('web-1 is now tearing down');
    expect(out.fetch).toBe(true);
    expect(have.state).toBe('ready');
  });

  it('does not announce a row the filters now hide', () => {
    const out = m.listEvent(
      row(),
      { state: 'ready', plan: '' },
      transition({ entity: 'deployment', to: 'deploying', version: 4 }, 'att_2'),
    );
    expect(out.row?.state).toBe('deploying');
    expect(out.announce).toBeNull();
  });

  it('ignores a transition the row shows already', () => {
    expect(
      m.listEvent(row({ version: 4 }), none, transition({ entity: 'deployment', to: 'failed', version: 4 })),
    ).toEqual({});
  });

  it('reads a deployment it has not loaded only when it now matches the state filter', () => {
    const ev = transition({ entity: 'deployment', to: 'failed', version: 4 });
    expect(m.listEvent(undefined, { state: 'failed', plan: '' }, ev)).toEqual({ fetch: true });
    expect(m.listEvent(undefined, { state: 'ready', plan: '' }, ev)).toEqual({ fetch: false });
  });

  it('an attempt transition changes the current attempt only', () => {
    const cur = { id: 'att_1', number: 1, kind: 'deploy', state: 'queued' };
    const have = row({ state: 'deploying', current_attempt: cur });
    const out = m.listEvent(have, none, transition({ entity: 'attempt', to: 'running' }, 'att_1'));
    expect(out).toEqual({ row: { ...have, current_attempt: { ...cur, state: 'running' } } });
    expect(m.listEvent(have, none, transition({ entity: 'attempt', to: 'running' }, 'att_0'))).toEqual({});
  });

  it('ignores events without a deployment and types it does not know', () => {
    expect(m.listEvent(undefined, none, { seq: 1, type: 'state_transition', at: T1 })).toEqual({});
    expect(m.listEvent(row(), none, { seq: 1, type: 'log_line', at: T1, deployment_id: 'dep_1' })).toEqual(
      {},
    );
  });
});

describe('create form input', () => {
  it('parses labels as key=value, commas or lines between them', () => {
    expect(m.parseLabels('')).toBeUndefined();
    expect(m.parseLabels(' team = web, env=staging\nrole=a=b ')).toEqual({
      team: 'web',
      env: 'staging',
      role: 'a=b',
    });
    expect(() => m.parseLabels('team')).toThrow('Labels: “team” is not key=value');
    expect(() => m.parseLabels('=web')).toThrow('is not key=value');
  });

  it('takes names of lowercase letters, digits and dashes, up to 63', () => {
    for (const ok of ['a', 'web-1', '0x', 'a'.repeat(63)]) expect(m.NAME_RE.test(ok)).toBe(true);
    for (const bad of ['', '-a', 'Web', 'a_b', 'a'.repeat(64)]) expect(m.NAME_RE.test(bad)).toBe(false);
  });
});
