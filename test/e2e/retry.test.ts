// The dashboard in a real browser while an automatic retry waits (SPEC §9.1): the list and the deployment
// page count down "retry 1/3 in Ns" every second, then shows the retry's attempt and the deployment becoming ready.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { openStore } from '../../src/store/open.ts';
import { FIXTURES } from '../helpers/engine.ts';
import { client, launchChromium, startServer, waitUntil, type RunningServer } from './server.ts';

let server: RunningServer;
let browser: Browser;
let api: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startServer({
      plans: {
        // Fails once, then succeeds. Its retry is due up to 20 days later; the test brings it closer.
        flicker: {
          deploy: [path.join(FIXTURES, 'flaky.sh')],
          teardown: [path.join(FIXTURES, 'ok.sh')],
          env: { FLAKY_FAILS: '1' },
          retry: { max: 3, backoff: '20d' },
        },
      },
    }),
    launchChromium(),
  ]);
  api = client(server.url);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

const secondsLeft = (text: string) => Number(/^retry 1\/3 in (\d+)s$/.exec(text)?.[1] ?? NaN);

describe('dashboard: automatic retry', () => {
  it('counts down while the retry waits, then shows the deployment ready', async () => {
    await api('POST', '/v1/deployments', { name: 'rt-1', plan: 'flicker' });
    await api('POST', '/v1/deployments/rt-1/attempts', {});
    await waitUntil(async () => (await api('GET', '/v1/deployments/rt-1')).retry, 'the schedule');
    // The wait shortened to 12 s, as if most of it had passed (the server's reconcile pass starts it).
    const store = await openStore(`sqlite:${path.join(path.dirname(server.dataDir), 'lifeline.db')}`);
    const at = new Date(Date.now() + 12_000).toISOString();
    await store.db.updateTable('deployments').set({ retry_at: at }).where('name', '=', 'rt-1').execute();
    await store.close();

    const page: Page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    // The list shows the countdown under the state, too.
    await page.goto(`${server.url}/#/`);
    const inList = page.locator('[data-testid="row-rt-1"] .retry-countdown');
    await inList.waitFor();
    expect(await inList.innerText()).toMatch(/^retry 1\/3 in \d+s$/);
    await page.goto(`${server.url}/#/d/rt-1`);
    const countdown = page.locator('[data-testid="retry-countdown"]');
    await countdown.waitFor();
    const first = await countdown.innerText();
    expect(first).toMatch(/^retry 1\/3 in \d+s$/);
    expect(secondsLeft(first)).toBeLessThanOrEqual(12);
    expect(await page.locator('[data-testid="retry-callout"]').innerText()).toContain(
      'Automatic retry 1/3 in',
    );
    expect(await page.locator('[data-action="cancel"]').innerText()).toBe('Cancel retry');
    // It ticks: a later reading shows fewer seconds left.
    const later = await waitUntil(async () => {
      const t = await countdown.innerText().catch(() => '');
      return secondsLeft(t) < secondsLeft(first) ? t : null;
    }, 'the countdown to tick');
    expect(later).toMatch(/^retry 1\/3 in \d+s$/);

    // Due: the retry starts on the server and the page follows it to ready.
    await page.locator('.dep-badge').getByText('ready').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="retry-callout"]').waitFor({ state: 'detached' });
    const { items } = await api('GET', '/v1/deployments/rt-1/attempts');
    expect(items.map((a: { requested_by: string; state: string }) => [a.requested_by, a.state])).toEqual([
      ['retry', 'succeeded'],
      [expect.any(String), 'failed'],
    ]);
  });
});
