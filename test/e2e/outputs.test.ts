// The dashboard's Outputs card in a real browser (SPEC §12.1): a deploy's outputs appear live, masked, an
// http(s) address as a link and nothing else as one; a teardown empties the card without a reload; at
// phone width a long value wraps instead of widening the page.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { FIXTURES } from '../helpers/engine.ts';
import { client, launchChromium, startServer, waitUntil, type RunningServer } from './server.ts';

let server: RunningServer;
let browser: Browser;
let api: ReturnType<typeof client>;
const pageErrors: string[] = [];
const SECRET = 'tok-Sup3r-s3cret';

beforeAll(async () => {
  const script = [path.join(FIXTURES, 'outputs.sh')];
  [server, browser] = await Promise.all([
    startServer({
      plans: {
        out: {
          deploy: script,
          teardown: script,
          params: {
            type: 'object',
            properties: { lines: { type: 'array' }, token: { type: 'string', writeOnly: true } },
            additionalProperties: false,
          },
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

const card = (page: Page) => page.locator('[data-testid="outputs"]');
const item = (page: Page, key: string) => card(page).locator(`[data-key="${key}"] dd`);

describe('dashboard: outputs', () => {
  it('shows a deploy’s outputs live and masked; a teardown empties them', async () => {
    await api('POST', '/v1/deployments', {
      name: 'site',
      plan: 'out',
      params: {
        token: SECRET,
        lines: [
          {
            output: {
              url: 'http://127.0.0.1:8080/site/',
              not_a_link: 'javascript:alert(1)',
              password: '$TOKEN',
              ports: [80, 443],
              long: 'x'.repeat(300),
            },
          },
        ],
      },
    });
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/#/d/site`);
    await card(page).getByText('none').waitFor();
    await api('POST', '/v1/deployments/site/attempts', {});

    // Live: the page was open before the deploy.
    await item(page, 'url').waitFor({ timeout: 20_000 });
    const link = item(page, 'url').locator('a');
    expect(await link.getAttribute('href')).toBe('http://127.0.0.1:8080/site/');
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
    expect(await item(page, 'not_a_link').locator('a').count()).toBe(0);
    expect(await item(page, 'not_a_link').innerText()).toBe('javascript:alert(1)');
    expect(await item(page, 'password').innerText()).toBe('***');
    expect(await item(page, 'ports').innerText()).toBe('[80,443]');
    expect(await page.content()).not.toContain(SECRET);

    // Phone width: the long value wraps.
    await page.setViewportSize({ width: 375, height: 740 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);

    await api('POST', '/v1/deployments/site/teardown', { confirm: 'site' });
    await card(page).getByText('none (torn down)').waitFor({ timeout: 20_000 });
    await waitUntil(
      async () => (await api('GET', '/v1/deployments/site')).state === 'torn_down',
      'torn down',
    );
    expect(await card(page).locator('[data-key]').count()).toBe(0);
  });
});
