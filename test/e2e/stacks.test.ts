// The dashboard's stacks (SPEC §12.5) in a real browser: the list, a stack drawn as columns by depth, a
// deploy run started from the page and followed live (unit states, run steps, progress), a teardown that
// asks for the name, the actions by role (a viewer gets none), and no sideways scrolling at phone width.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { client, launchChromium, startServer, TOKENS, waitUntil, type RunningServer } from './server.ts';

let server: RunningServer;
let browser: Browser;
let operatorApi: ReturnType<typeof client>;
const pageErrors: string[] = [];

const SPEC = {
  name: 'range',
  units: [
    { key: 'fin', plan: 'steps', after: ['app'] },
    { key: 'net', plan: 'steps' },
    { key: 'app', plan: 'steps', count: 2, after: ['net'] },
  ],
};

beforeAll(async () => {
  [server, browser] = await Promise.all([startServer({ auth: true }), launchChromium()]);
  operatorApi = client(server.url, TOKENS.operator);
  await operatorApi('POST', '/v1/stacks', SPEC);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

async function signedIn(token: string, hash: string, width = 1280): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#role:not([hidden])').waitFor();
  return page;
}

const unit = (page: Page, name: string) => page.locator(`[data-testid="unit-${name}"]`);
const unitState = (page: Page, name: string) =>
  unit(page, name).locator('[data-testid="state-badge"]').getAttribute('data-state');
const columns = (page: Page) =>
  page
    .locator('.stack-col')
    .evaluateAll((cols) =>
      cols.map((c) => [...c.querySelectorAll('.unit-card')].map((u) => u.getAttribute('data-testid'))),
    );
const noSideways = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

describe('dashboard: stacks', () => {
  it('lists stacks and draws one as its units in columns by depth; a viewer gets no actions', async () => {
    const page = await signedIn(TOKENS.viewer, '#/stacks');
    const row = page.locator('[data-testid="stack-row-range"]');
    await row.waitFor();
    expect(await row.locator('.cell-units').innerText()).toBe('4');
    expect(await row.locator('[data-testid="state-badge"]').getAttribute('data-state')).toBe('pending');
    expect(await row.locator('.cell-run').innerText()).toBe('—');

    await row.getByRole('link', { name: 'range' }).click();
    await unit(page, 'range-fin').waitFor();
    expect(await columns(page)).toEqual([
      ['unit-range-net'],
      ['unit-range-app-1', 'unit-range-app-2'],
      ['unit-range-fin'],
    ]);
    expect(await page.locator('[data-testid="actions"] button').count()).toBe(0);
    await page.getByText('Read only').waitFor();

    // Phone width: the columns stack top to bottom, nothing scrolls sideways.
    await page.setViewportSize({ width: 375, height: 740 });
    expect(await noSideways(page)).toBe(true);
    const [a, b] = await Promise.all([
      unit(page, 'range-net').boundingBox(),
      unit(page, 'range-fin').boundingBox(),
    ]);
    expect(b!.y).toBeGreaterThan(a!.y);
  });

  it('deploys from the page and follows the run live; teardown asks for the name', async () => {
    const page = await signedIn(TOKENS.operator, '#/s/range');
    await unit(page, 'range-net').waitFor();
    const watcher = await signedIn(TOKENS.viewer, '#/stacks', 375);
    const row = watcher.locator('[data-testid="stack-row-range"]');
    await row.waitFor();
    expect(await page.locator('[data-action="cancel"]').getAttribute('aria-disabled')).toBe('true');

    await page.locator('[data-action="deploy"]').click();
    await page.locator('[data-testid="stack-deploy-dialog"]').getByRole('button', { name: 'Deploy' }).click();

    // Live: the first column moves before the second; the list elsewhere shows the run.
    await waitUntil(async () => (await unitState(page, 'range-net')) === 'deploying', 'net deploying');
    expect(await unitState(page, 'range-fin')).toBe('pending');
    await row.locator('[data-run-state]').waitFor();
    expect(await page.locator('[data-action="deploy"]').getAttribute('aria-disabled')).toBe('true');
    expect(await page.locator('[data-action="cancel"]').getAttribute('aria-disabled')).toBeNull();
    await waitUntil(
      async () => (await unitState(page, 'range-app-1')) === 'deploying',
      'app-1 deploying',
      20_000,
    );
    expect(await unitState(page, 'range-net')).toBe('ready');
    expect(await unit(page, 'range-fin').locator('[data-step]').getAttribute('data-step')).toBe('waiting');

    await page
      .locator('[data-testid="run"] [data-run-state="succeeded"]')
      .first()
      .waitFor({ timeout: 30_000 });
    expect(await page.locator('[data-testid="run-progress"]').innerText()).toBe('4 of 4 units done');
    for (const n of ['range-net', 'range-app-1', 'range-app-2', 'range-fin']) {
      expect(await unitState(page, n)).toBe('ready');
    }
    await waitUntil(
      async () => (await row.locator('[data-testid="state-badge"]').getAttribute('data-state')) === 'ready',
      'list row ready',
    );
    expect(await row.locator('.cell-run').innerText()).toBe('—');
    expect(await noSideways(watcher)).toBe(true);

    // Teardown: the confirm button waits for the stack's name.
    await page.locator('[data-action="teardown"]').click();
    const dialog = page.locator('[data-testid="stack-teardown-dialog"]');
    const confirm = dialog.getByRole('button', { name: 'Tear down' });
    await dialog.getByLabel(/to confirm/).fill('rang');
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel(/to confirm/).fill('range');
    await confirm.click();
    await waitUntil(
      async () => (await unitState(page, 'range-net')) === 'torn_down',
      'net torn down',
      30_000,
    );
    expect(await unitState(page, 'range-fin')).toBe('torn_down');
    const stack = await operatorApi('GET', '/v1/stacks/range');
    expect(stack.state).toBe('torn_down');
  });
});
