// The dashboard's retry countdown (web/js/retry.js): "retry 2/3 in 28s", ticking down, then "starting…".
import { describe, expect, it } from 'vitest';
import { importWeb } from './web-module.ts';

type Retry = { number: number; of: number; at: string };
const { retryCountdown, timeLeft } = await importWeb<{
  retryCountdown(retry: Retry | null, now?: number): { text: string; due: boolean } | null;
  timeLeft(ms: number): string;
}>('retry.js');

const r = await importWeb<{
  applyEvent(
    model: unknown,
    ev: { seq: number; type: string; at: string; data?: Record<string, unknown> },
  ): { model: unknown; changes: Record<string, unknown> };
}>('views/deployment/reducer.js');

describe('retryCountdown', () => {
  const at = '2026-11-30T12:34:56.000Z';
  const t = Date.parse(at);

  it('says nothing when no retry waits', () => {
    expect(retryCountdown(null, t)).toBeNull();
    expect(retryCountdown({ number: 1, of: 3, at: 'not a time' }, t)).toBeNull();
  });

  it('counts down each second, rounding up, until it is due', () => {
    const r = { number: 2, of: 3, at };
    expect(retryCountdown(r, t - 28_000)).toEqual({ text: 'retry 2/3 in 28s', due: false });
    expect(retryCountdown(r, t - 26_500)).toEqual({ text: 'retry 2/3 in 27s', due: false });
    expect(retryCountdown(r, t - 1)).toEqual({ text: 'retry 2/3 in 1s', due: false });
    expect(retryCountdown(r, t)).toEqual({ text: 'retry 2/3 starting…', due: true });
    expect(retryCountdown(r, t + 5_000)).toEqual({ text: 'retry 2/3 starting…', due: true });
  });

  it('reads longer waits in minutes, hours and days', () => {
    expect([59_000, 60_000, 185_000, 7_620_000, 273_600_000].map(timeLeft)).toEqual([
      '59s',
      '1m 00s',
      '3m 05s',
      '2h 07m',
      '3d 04h',
    ]);
  });
});

describe('the deployment page reducer on retry events', () => {
  const model = {
    dep: { id: 'dep_1', name: 'web-1', state: 'failed', version: 3, current_attempt: null, retry: null },
    transitions: [],
    attempts: [],
    lastSeq: 5,
    deleted: false,
  };

  it('a scheduled or cancelled retry re-reads the deployment, which says which retry waits', () => {
    for (const type of ['retry_scheduled', 'retry_cancelled']) {
      expect(r.applyEvent(model, { seq: 9, type, at: 'x', data: { number: 1, of: 3 } })).toEqual({
        model,
        changes: { refresh: true },
      });
    }
  });

  it('exhausted retries are told to screen readers, not toasted (nobody here asked for them)', () => {
    const { changes } = r.applyEvent(model, {
      seq: 9,
      type: 'retry_exhausted',
      at: 'x',
      data: { number: 3, of: 3 },
    });
    expect(changes).toEqual({
      refresh: true,
      announce: 'web-1: 3 automatic retries failed',
    });
  });
});

const list = await importWeb<{
  listEvent(
    have: unknown,
    filters: unknown,
    ev: { type: string; deployment_id?: string },
  ): Record<string, unknown>;
}>('views/list/model.js');

describe('the list on retry events', () => {
  it('re-reads a shown deployment, whose retry says what waits; ignores one not shown', () => {
    for (const type of ['retry_scheduled', 'retry_cancelled', 'retry_exhausted']) {
      expect(list.listEvent({ id: 'dep_1' }, {}, { type, deployment_id: 'dep_1' })).toEqual({ fetch: true });
      expect(list.listEvent(undefined, {}, { type, deployment_id: 'dep_1' })).toEqual({ fetch: false });
    }
  });
});

describe('the deployment page reducer on outputs_changed', () => {
  const model = {
    dep: { id: 'dep_1', name: 'web-1', state: 'ready', version: 3, current_attempt: null, outputs: { a: 1 } },
    transitions: [],
    attempts: [],
    lastSeq: 5,
    deleted: false,
  };

  it('takes the new outputs from the event, redraws the head (and the Outputs card), and re-reads', () => {
    const next = r.applyEvent(model, { seq: 9, type: 'outputs_changed', at: 'x', data: { outputs: {} } });
    expect(next.changes).toEqual({ head: true, refresh: true });
    expect((next.model as typeof model).dep).toEqual({ ...model.dep, outputs: {} });
    expect(model.dep.outputs).toEqual({ a: 1 });
  });
});
