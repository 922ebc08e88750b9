// The label filter of the deployments list runs in SQL (deployment_labels): the same results and
// paging as filtering every live deployment's labels in code, newest first.
import { afterEach, describe, expect, it } from 'vitest';
import type { Lifeline } from '../../src/lifecycle/engine.ts';
import { OPERATOR, startEngine, tempDir } from '../helpers/engine.ts';

let engine: Lifeline | null = null;
afterEach(async () => {
  await engine?.close();
  engine = null;
});

describe('label-filtered deployments list', () => {
  it('matches an in-code filter over live deployments, page by page', async () => {
    engine = await startEngine(tempDir(), { durable_commits: false });
    const made: { name: string; labels: Record<string, string> }[] = [];
    for (let i = 0; i < 60; i++) {
      const labels: Record<string, string> = { env: ['prod', 'dev', 'qa'][i % 3] };
      if (i % 4 === 0) labels.team = i % 8 === 0 ? 'a' : 'b';
      if (i % 5 === 0) labels['x.io/tier'] = '';
      made.push({ name: `l-${i}`, labels });
      await engine.createDeployment({ name: `l-${i}`, plan: 'ok', labels }, OPERATOR);
    }
    const deleted = new Set(['l-0', 'l-12', 'l-33', 'l-59']);
    for (const name of deleted) await engine.deleteDeployment(name, {}, OPERATOR);

    const filters: Record<string, string>[] = [
      { env: 'prod' },
      { team: 'a' },
      { env: 'prod', team: 'b' },
      { team: 'b', env: 'dev' },
      { 'x.io/tier': '' },
      { env: 'none' },
      { env: 'dev', team: 'a', 'x.io/tier': '' },
    ];
    for (const f of filters) {
      const expected = made
        .filter((d) => !deleted.has(d.name) && Object.entries(f).every(([k, v]) => d.labels[k] === v))
        .map((d) => d.name)
        .reverse();
      const got: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await engine.listDeployments({ labels: f, limit: 4, cursor });
        got.push(...page.items.map((d) => d.name));
        expect(page.items.length).toBeLessThanOrEqual(4);
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      expect(got, JSON.stringify(f)).toEqual(expected);
    }
    // Combined with the other filters.
    const ready = await engine.listDeployments({ labels: { env: 'prod' }, state: 'ready', limit: 50 });
    expect(ready.items).toEqual([]);
  }, 60_000);
});
