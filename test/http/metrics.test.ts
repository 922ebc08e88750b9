// /metrics through a real listening server: after a scripted run (deploys that succeed and fail, a
// teardown, a pending deployment, an open event stream) every count in the Prometheus text, read with a
// Prometheus text parser, equals what the API says.
import fs from 'node:fs';
import path from 'node:path';
import parsePrometheus, { type PromFamily } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type Server } from '../../src/server.ts';
import { FIXTURES, quietLogger, tempDir, waitFor } from '../helpers/engine.ts';
import { AUTH_CONFIG, TOKENS } from './helpers.ts';

let server: Server;
const stream = new AbortController();

async function call(method: string, url: string, body?: unknown, role: keyof typeof TOKENS = 'admin') {
  const res = await fetch(server.url + url, {
    method,
    headers: {
      authorization: `Bearer ${TOKENS[role]}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
}

/**
 * The parser merges a histogram's labelled series into one (a bug of parse-prometheus-text-format 1.1):
 * reading the text again without the histogram TYPE lines gives each `_bucket`/`_count`/`_sum` series
 * with its own labels.
 */
function histogramSeries(text: string): PromFamily[] {
  return parsePrometheus(text.replace(/^# TYPE \S+ histogram$/gm, ''));
}

function family(all: PromFamily[], name: string): PromFamily {
  const f = all.find((x) => x.name === name);
  if (!f) throw new Error(`no metric ${name}`);
  return f;
}

beforeAll(async () => {
  const dir = tempDir('lifeline-metrics-');
  const file = path.join(dir, 'lifeline.yaml');
  const p = (f: string) => [path.join(FIXTURES, f)];
  fs.writeFileSync(
    file,
    JSON.stringify({
      server: { host: '127.0.0.1', port: 0 },
      db: 'sqlite:./lifeline.db',
      data_dir: './data',
      ...AUTH_CONFIG,
      plans: {
        ok: { deploy: p('ok.sh'), teardown: p('ok.sh') },
        fail: { deploy: p('fail.sh'), teardown: p('ok.sh') },
      },
    }),
  );
  server = await serve({ configFile: file, env: {}, logger: quietLogger() });
}, 60_000);

afterAll(async () => {
  stream.abort();
  await server?.close();
});

describe('GET /metrics', () => {
  it('needs a viewer token when auth is configured', async () => {
    const res = await fetch(`${server.url}/metrics`);
    expect(res.status).toBe(401);
    expect((await call('GET', '/metrics', undefined, 'viewer')).status).toBe(200);
  });

  it('counts what the API reports after a scripted run', async () => {
    const deploy = async (name: string, plan: string) => {
      expect((await call('POST', '/v1/deployments', { name, plan })).status).toBe(201);
      expect((await call('POST', `/v1/deployments/${name}/attempts`, {})).status).toBe(202);
    };
    await deploy('web-1', 'ok');
    await deploy('web-2', 'ok');
    await deploy('bad-1', 'fail');
    expect((await call('POST', '/v1/deployments', { name: 'idle-1', plan: 'ok' })).status).toBe(201);
    const settled = async (name: string, state: string) =>
      waitFor(async () => (await call('GET', `/v1/deployments/${name}`)).json().state === state, name);
    await settled('web-1', 'ready');
    await settled('web-2', 'ready');
    await settled('bad-1', 'failed');
    expect((await call('POST', '/v1/deployments/web-2/teardown', { confirm: 'web-2' })).status).toBe(202);
    await settled('web-2', 'torn_down');

    // One open event stream.
    const sse = await fetch(`${server.url}/v1/events/stream`, {
      headers: { authorization: `Bearer ${TOKENS.viewer}` },
      signal: stream.signal,
    });
    expect(sse.status).toBe(200);

    const res = await call('GET', '/metrics', undefined, 'viewer');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const metrics = parsePrometheus(res.text);

    // Deployments by state, against the list.
    const deployments = (await call('GET', '/v1/deployments?limit=100')).json().items as {
      id: string;
      name: string;
      plan: string;
      state: string;
    }[];
    const byState = new Map<string, number>();
    for (const d of deployments) byState.set(d.state, (byState.get(d.state) ?? 0) + 1);
    const gauge = family(metrics, 'lifeline_deployments');
    expect(gauge.type).toBe('GAUGE');
    for (const m of gauge.metrics) {
      expect(Number(m.value), m.labels!.state).toBe(byState.get(m.labels!.state) ?? 0);
    }
    expect(gauge.metrics.map((m) => m.labels!.state)).toContain('unknown');
    expect(Number(family(metrics, 'lifeline_deployments_unknown').metrics[0].value)).toBe(
      byState.get('unknown') ?? 0,
    );

    // Attempts by plan/kind/state/reason, against each deployment's attempts.
    const expected = new Map<string, number>();
    let ended = 0;
    for (const d of deployments) {
      const atts = (await call('GET', `/v1/deployments/${d.name}/attempts`)).json().items;
      for (const a of atts) {
        const key = [d.plan, a.kind, a.state, a.reason ?? ''].join('/');
        expected.set(key, (expected.get(key) ?? 0) + 1);
        if (a.started_at && a.ended_at) ended++;
      }
    }
    const got = new Map(
      family(metrics, 'lifeline_attempts').metrics.map((m) => [
        [m.labels!.plan, m.labels!.kind, m.labels!.state, m.labels!.reason].join('/'),
        Number(m.value),
      ]),
    );
    expect(got).toEqual(expected);
    expect(expected.get('fail/deploy/failed/exit_nonzero')).toBe(1);

    // Durations: one observation per ended attempt, under bounded labels only.
    expect(family(metrics, 'lifeline_attempt_duration_seconds').type).toBe('HISTOGRAM');
    // prom-client writes each label set's buckets, sum and count together: `_count` comes in runs.
    const counts = histogramSeries(res.text)
      .filter((f) => f.name === 'lifeline_attempt_duration_seconds_count')
      .flatMap((f) => f.metrics);
    const observed = counts.reduce((n, m) => n + Number(m.value), 0);
    expect(observed).toBe(ended);
    expect(ended).toBe(4);
    for (const m of counts) {
      expect(Object.keys(m.labels!).sort()).toEqual(['kind', 'plan']);
      expect(['ok', 'fail']).toContain(m.labels!.plan);
    }

    // The last seq, against the event log.
    const events = (await call('GET', '/v1/events?limit=1000')).json();
    expect(Number(family(metrics, 'lifeline_events_last_seq').metrics[0].value)).toBe(events.next_after);

    expect(Number(family(metrics, 'lifeline_stream_subscribers').metrics[0].value)).toBe(1);
    expect(Number(family(metrics, 'lifeline_store_errors_total').metrics[0].value)).toBe(0);
    expect(Number(family(metrics, 'lifeline_reconcile_pass_seconds').metrics[0].count)).toBeGreaterThan(0);
    expect(family(metrics, 'lifeline_reconcile_pass_seconds').type).toBe('HISTOGRAM');
    expect(family(metrics, 'process_cpu_user_seconds_total').type).toBe('COUNTER');
    expect(family(metrics, 'nodejs_heap_size_used_bytes').type).toBe('GAUGE');

    // No label anywhere carries a deployment's name or id.
    const ids = deployments.flatMap((d) => [d.id, d.name]);
    for (const f of metrics) {
      for (const m of f.metrics) for (const v of Object.values(m.labels ?? {})) expect(ids).not.toContain(v);
    }

    // The stream closing is counted too.
    stream.abort();
    await waitFor(async () => {
      const again = parsePrometheus((await call('GET', '/metrics')).text);
      return Number(family(again, 'lifeline_stream_subscribers').metrics[0].value) === 0;
    }, 'the stream to be uncounted');
  }, 60_000);
});
