// The dashboard in a real browser: a coloured log shows colour with no escape codes and no markup from
// the plan, the phases card draws a bar, and a failed deployment rolls back to its last good params.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { FIXTURES } from '../helpers/engine.ts';
import { client, launchChromium, startServer, waitUntil, type RunningServer } from './server.ts';

let server: RunningServer;
let browser: Browser;
let api: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  const smart = [path.join(FIXTURES, 'smart.sh')];
  [server, browser] = await Promise.all([
    startServer({ plans: { smart: { deploy: smart, teardown: smart } } }),
    launchChromium(),
  ]);
  api = client(server.url);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

async function settle(name: string, state: string) {
  await waitUntil(
    async () => (await api('GET', `/v1/deployments/${name}`)).state === state,
    `${name} ${state}`,
  );
}

describe('dashboard: colours, phases, rollback', () => {
  it('renders a coloured log as colour, draws the phase bar, and rolls back a failed deploy', async () => {
    await api('POST', '/v1/deployments', { name: 'sm-1', plan: 'smart', params: { version: '1' } });
    await api('POST', '/v1/deployments/sm-1/attempts', {});
    await settle('sm-1', 'ready');
    await api('POST', '/v1/deployments/sm-1/attempts', { params: { version: '2', fail: true } });
    await settle('sm-1', 'failed');

    const page: Page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/#/d/sm-1`);

    const log = page.locator('[data-testid="log"]');
    await log.getByText('ok: [localhost]').waitFor();
    const text = await log.innerText();
    expect(text).not.toMatch(/\x1b|\[0;32m|\[0m/);
    expect(text).toContain('<img src=x onerror=alert(1)>');
    expect(await log.locator('img').count()).toBe(0);
    expect(await log.locator('.ansi-green-fg').first().innerText()).toBe('ok: [localhost]');
    const colour = await log
      .locator('.ansi-green-fg')
      .first()
      .evaluate((el) => getComputedStyle(el).color);
    expect(colour).not.toBe(await log.evaluate((el) => getComputedStyle(el).color));

    const bar = page.locator('[data-testid="phase-bar"] .phase-seg');
    await bar.first().waitFor();
    expect(await bar.count()).toBe(2);
    expect(await page.locator('.phase-list li').allInnerTexts()).toEqual([
      expect.stringMatching(/^prepare \d/),
      expect.stringMatching(/^apply \d/),
    ]);

    await page.getByRole('button', { name: 'Roll back to #1…' }).click();
    const dialog = page.locator('[data-testid="rollback-dialog"]');
    await dialog.waitFor();
    expect(await dialog.locator('[data-testid="rollback-params"]').innerText()).toContain('"version": "1"');
    await dialog.getByRole('button', { name: 'Roll back to #1', exact: true }).click();
    await settle('sm-1', 'ready');
    const { items } = await api('GET', '/v1/deployments/sm-1/attempts');
    expect(items[0]).toMatchObject({
      number: 3,
      rollback_of: 1,
      state: 'succeeded',
      params: { version: '1' },
    });
  });
});
