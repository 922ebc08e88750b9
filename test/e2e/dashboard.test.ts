// The dashboard in a real browser (Debian's Chromium headless shell) against a real `lifeline serve` without
// auth: create and deploy from the UI and watch the state change live, the log fill, a teardown behind the
// name confirmation, an `unknown` deployment resolved, and the layout at phone width.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { client, killAttempt, launchChromium, startServer, waitUntil, type RunningServer } from './server.ts';

let server: RunningServer;
let browser: Browser;
let context: BrowserContext;
let api: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([startServer(), launchChromium()]);
  api = client(server.url);
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

async function open(hash = ''): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  return page;
}

/** Marks the document; a reload or a navigation to another document would lose the mark. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { __sameDocument: boolean }).__sameDocument = true;
  });
}
async function sameDocument(page: Page): Promise<boolean> {
  return page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument === true);
}

const headBadge = (page: Page, state: string) => page.locator(`.dep-badge [data-state="${state}"]`);
const rowBadge = (page: Page, name: string, state: string) =>
  page.locator(`tr[data-name="${name}"] .cell-state [data-state="${state}"]`);
const logText = (page: Page) => page.locator('[data-testid="log"]').innerText();

describe('dashboard (no auth: everyone is admin)', () => {
  it('creates and deploys from the UI; the badge moves deploying → ready without a reload', async () => {
    const page = await open();
    await page.getByRole('heading', { name: 'Deployments' }).waitFor();
    await page.locator('#conn[data-status="live"]').waitFor();
    await markDocument(page);

    await page.getByRole('button', { name: 'New deployment' }).click();
    const form = page.getByRole('form', { name: 'New deployment' });
    await form.getByLabel('Name', { exact: true }).fill('web-1');
    await form.getByLabel('Plan', { exact: true }).selectOption('steps');
    // Fields from the plan's params schema: an integer and an enum.
    await form.getByLabel('replicas').fill('2');
    await form.getByLabel('tier').selectOption('small');
    await form.getByLabel('Labels').fill('team=web');
    await form.getByRole('button', { name: 'Create', exact: true }).click();

    // The app moves to the deployment's page (a hash route) while the attempt runs.
    await page.waitForURL(/#\/d\/web-1$/);
    await headBadge(page, 'deploying').waitFor();
    await headBadge(page, 'ready').waitFor({ timeout: 15_000 });
    expect(await sameDocument(page)).toBe(true);

    const dep = await api('GET', '/v1/deployments/web-1');
    expect(dep).toMatchObject({ state: 'ready', plan: 'steps', params: { replicas: 2, tier: 'small' } });
    expect(dep.labels).toEqual({ team: 'web' });
    // The timeline grew live: pending, deploying, ready.
    await expect
      .poll(() =>
        page.locator('.timeline-bar .seg').evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))),
      )
      .toEqual(['pending', 'deploying', 'ready']);

    // Back on the list (no reload either), a deploy started elsewhere moves the row's badge live.
    await page
      .getByRole('navigation', { name: 'Breadcrumb' })
      .getByRole('link', { name: 'Deployments' })
      .click();
    await rowBadge(page, 'web-1', 'ready').waitFor();
    await page.locator('#conn[data-status="live"]').waitFor();
    await api('POST', '/v1/deployments/web-1/attempts', {});
    await rowBadge(page, 'web-1', 'deploying').waitFor();
    await rowBadge(page, 'web-1', 'ready').waitFor({ timeout: 15_000 });
    await page.locator('tr[data-name="web-1"] .attempt-no', { hasText: '#2' }).waitFor();
    expect(await sameDocument(page)).toBe(true);
    await page.close();
  });

  it('fills the live log of the current attempt as its lines arrive', async () => {
    await api('POST', '/v1/deployments', { name: 'log-1', plan: 'steps' });
    const page = await open('#/d/log-1');
    await headBadge(page, 'pending').waitFor();
    await page.locator('#conn[data-status="live"]').waitFor();
    await markDocument(page);

    await page.locator('[data-action="deploy"]').click();
    const dialog = page.getByRole('dialog', { name: 'Deploy log-1' });
    await dialog.getByRole('button', { name: 'Deploy' }).click();
    await dialog.waitFor({ state: 'detached' });

    // A line that is printed early is shown before the attempt is over: the log fills while it runs.
    await page.locator('[data-testid="log"]', { hasText: 'step 2/5: working' }).waitFor();
    const early = await logText(page);
    expect(early).toContain('deploy of log-1, attempt 1');
    expect(early).not.toContain('log-1: deploy done');
    await headBadge(page, 'ready').waitFor({ timeout: 15_000 });
    // The plan's check verifies the deploy after exit 0; its output is the last part of the log.
    await page.locator('[data-testid="log"]', { hasText: 'checking log-1' }).waitFor();
    const lines = (await logText(page)).trim().split('\n');
    expect(lines).toEqual([
      'deploy of log-1, attempt 1',
      'step 1/5: working',
      'step 2/5: working',
      'step 3/5: working',
      'step 4/5: working',
      'step 5/5: working',
      'log-1: deploy done',
      'checking log-1',
    ]);
    // The attempts table says how it went.
    await page.locator('[data-testid="attempts"] [data-attempt-state="succeeded"]').waitFor();

    // Opened in the middle of an attempt, the page shows the lines so far and then the rest, each once.
    await api('POST', '/v1/deployments/log-1/attempts', {});
    const late = await open('#/d/log-1');
    await late.locator('[data-testid="log"]', { hasText: 'attempt 2' }).waitFor();
    await headBadge(late, 'ready').waitFor({ timeout: 15_000 });
    await late.locator('[data-testid="log"]', { hasText: 'checking log-1' }).waitFor();
    expect((await logText(late)).trim().split('\n')).toEqual([
      'deploy of log-1, attempt 2',
      ...[1, 2, 3, 4, 5].map((i) => `step ${i}/5: working`),
      'log-1: deploy done',
      'checking log-1',
    ]);
    expect(await sameDocument(page)).toBe(true);
    await late.close();
    await page.close();
  });

  it('tears down only after the name is typed', async () => {
    await api('POST', '/v1/deployments', { name: 'gone-1', plan: 'steps' });
    await api('POST', '/v1/deployments/gone-1/attempts', {});
    const page = await open('#/d/gone-1');
    await headBadge(page, 'ready').waitFor({ timeout: 15_000 });

    const opener = page.locator('[data-action="teardown"]');
    await opener.click();
    const dialog = page.getByRole('dialog', { name: 'Tear down gone-1?' });
    const confirm = dialog.getByRole('button', { name: 'Tear down' });
    const input = dialog.getByLabel('Type gone-1 to confirm');
    expect(await confirm.isDisabled()).toBe(true);
    await input.fill('gone-2');
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByText('That is not the name of this deployment.').waitFor();
    expect(await input.getAttribute('aria-invalid')).toBe('true');

    // Escape closes it and gives focus back to the button that opened it; nothing happened.
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await opener.evaluate((el) => el === document.activeElement)).toBe(true);
    expect((await api('GET', '/v1/deployments/gone-1')).state).toBe('ready');

    await page.keyboard.press('Enter'); // the focused "Tear down" opens it again
    await input.fill('gone-1');
    expect(await confirm.isEnabled()).toBe(true);
    await confirm.click();
    await dialog.waitFor({ state: 'detached' });
    await headBadge(page, 'torn_down').waitFor({ timeout: 15_000 });
    // Torn down: tearing down again is not offered.
    expect(await page.locator('[data-action="teardown"]').getAttribute('aria-disabled')).toBe('true');
    const transitions = await api('GET', '/v1/deployments/gone-1/transitions');
    expect(transitions.items.map((t: { to: string }) => t.to)).toEqual([
      'pending',
      'deploying',
      'ready',
      'tearing_down',
      'torn_down',
    ]);
    await page.close();
  });

  it('shows a lost outcome as unknown, live, and resolves it from the UI', async () => {
    await api('POST', '/v1/deployments', { name: 'lost-1', plan: 'sleep' });
    const att = await api('POST', '/v1/deployments/lost-1/attempts', {});
    const page = await open('#/d/lost-1');
    await headBadge(page, 'deploying').waitFor();
    await page.locator('#conn[data-status="live"]').waitFor();
    await waitUntil(async () => (await api('GET', `/v1/attempts/${att.id}`)).state === 'running', 'running');
    await page.locator('[data-testid="log"]', { hasText: 'sleeping' }).waitFor();

    killAttempt(server.dataDir, att.id);
    await headBadge(page, 'unknown').waitFor({ timeout: 20_000 });
    await page.locator('[data-testid="unknown-callout"]', { hasText: 'no exit record' }).waitFor();
    // Unknown is a stop sign: deploy and teardown now need force, which the dialog asks for.
    await page.locator('[data-action="teardown"]').click();
    const td = page.getByRole('dialog', { name: 'Tear down lost-1?' });
    await td.getByLabel('Type lost-1 to confirm').fill('lost-1');
    expect(await td.getByRole('button', { name: 'Tear down' }).isDisabled()).toBe(true);
    await td.getByRole('button', { name: 'Cancel' }).click();

    await page.locator('[data-action="resolve"]').click();
    const dialog = page.getByRole('dialog', { name: 'Resolve lost-1' });
    const confirm = dialog.getByRole('button', { name: 'Resolve' });
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel('Failed').check();
    await dialog.getByLabel('Reason').fill('killed by hand in the browser test');
    await confirm.click();
    await dialog.waitFor({ state: 'detached' });
    await headBadge(page, 'failed').waitFor();
    expect(await page.locator('[data-testid="unknown-callout"]').count()).toBe(0);

    await page.locator('.transitions-details summary').click();
    await page.getByText('killed by hand in the browser test').waitFor();
    const last = (await api('GET', '/v1/deployments/lost-1/transitions')).items.at(-1);
    expect(last).toMatchObject({
      from: 'unknown',
      to: 'failed',
      reason: 'killed by hand in the browser test',
    });
    await page.close();
  });

  it('works at phone width: no sideways scrolling, actions reachable', async () => {
    const phone = await browser.newContext({
      viewport: { width: 375, height: 740 },
      hasTouch: true,
      isMobile: true,
    });
    try {
      const page = await phone.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${server.url}/`);
      await page.locator('tr[data-name="web-1"]').waitFor();
      // Measured against 375 px itself: a mobile viewport would otherwise widen to fit the content.
      const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - 375);
      expect(await overflow()).toBeLessThanOrEqual(0);
      await page.getByRole('link', { name: 'web-1' }).click();
      await headBadge(page, 'ready').waitFor();
      await page.locator('.timeline-bar').waitFor();
      expect(await overflow()).toBeLessThanOrEqual(0);
      const deploy = page.locator('[data-action="deploy"]');
      expect(await deploy.isVisible()).toBe(true);
      await deploy.click();
      const dialog = page.getByRole('dialog', { name: 'Deploy web-1' });
      const box = await dialog.boundingBox();
      expect(box!.width).toBeLessThanOrEqual(375);
      await dialog.getByRole('button', { name: 'Cancel' }).click();
    } finally {
      await phone.close();
    }
  });
});
