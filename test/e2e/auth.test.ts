// The dashboard against a server with tokens: it asks for one, keeps it for the tab, streams with it (the
// stream client sends the Authorization header that EventSource cannot), and shows each role only the
// actions it may take: a viewer none, an operator deploy/teardown/cancel but not resolve or delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { client, launchChromium, startServer, TOKENS, type RunningServer } from './server.ts';

let server: RunningServer;
let browser: Browser;
let operatorApi: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([startServer({ auth: true }), launchChromium()]);
  operatorApi = client(server.url, TOKENS.operator);
  await operatorApi('POST', '/v1/deployments', { name: 'shared-1', plan: 'steps' });
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

/** A fresh tab (its own sessionStorage) signed in with `token`. */
async function signedIn(token: string, hash = ''): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#role:not([hidden])').waitFor();
  return page;
}

const actionNames = (page: Page) =>
  page
    .locator('[data-testid="actions"] button')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-action')));

describe('dashboard with auth', () => {
  it('asks for a token, refuses a wrong one, and keeps a good one for the tab', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${server.url}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Access token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('That token was not accepted.').waitFor();

    await page.getByLabel('Access token').fill(TOKENS.viewer);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('tr[data-name="shared-1"]').waitFor();
    expect(await page.locator('#role').innerText()).toMatch(/viewer/i);
    expect(await page.evaluate(() => sessionStorage.getItem('lifeline.token'))).toBe(TOKENS.viewer);

    // A reload keeps the session (sessionStorage), and the stream runs with the token: a deployment
    // created meanwhile appears without another reload.
    await page.reload();
    await page.locator('tr[data-name="shared-1"]').waitFor();
    await page.locator('#conn[data-status="live"]').waitFor();
    await operatorApi('POST', '/v1/deployments', { name: 'seen-live', plan: 'steps' });
    await page.locator('tr[data-name="seen-live"] [data-state="pending"]').waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('lifeline.token'))).toBeNull();
    await context.close();
  });

  it('a viewer sees no action buttons', async () => {
    const page = await signedIn(TOKENS.viewer);
    await page.locator('tr[data-name="shared-1"]').waitFor();
    expect(await page.getByRole('button', { name: 'New deployment' }).count()).toBe(0);

    await page.getByRole('link', { name: 'shared-1' }).click();
    await page.locator('.dep-badge [data-state="pending"]').waitFor();
    await page.getByText('Read only: your token’s role cannot change deployments.').waitFor();
    expect(await page.locator('[data-testid="actions"] button').count()).toBe(0);
    expect(await page.locator('main button[data-action]').count()).toBe(0);
    await page.context().close();
  });

  it('an operator sees deploy and teardown but not resolve; an admin sees resolve', async () => {
    const page = await signedIn(TOKENS.operator, '#/d/shared-1');
    await page.locator('.dep-badge [data-state="pending"]').waitFor();
    await page.locator('[data-action="deploy"]').waitFor();
    expect(await actionNames(page)).toEqual(['deploy', 'teardown', 'cancel', 'check']);
    expect(await page.locator('[data-action="resolve"]').count()).toBe(0);

    // And the operator's deploy works, streamed live with the token.
    await page.locator('[data-action="deploy"]').click();
    await page
      .getByRole('dialog', { name: 'Deploy shared-1' })
      .getByRole('button', { name: 'Deploy' })
      .click();
    await page.locator('.dep-badge [data-state="ready"]').waitFor({ timeout: 15_000 });
    await page.locator('[data-testid="log"]', { hasText: 'shared-1: deploy done' }).waitFor();
    const attempts = await operatorApi('GET', '/v1/deployments/shared-1/attempts');
    expect(attempts.items[0].requested_by).toBe('operator-e2e');
    await page.context().close();

    const admin = await signedIn(TOKENS.admin, '#/d/shared-1');
    await admin.locator('.dep-badge [data-state="ready"]').waitFor();
    await admin.locator('[data-action="resolve"]').waitFor();
    expect(await actionNames(admin)).toEqual(['deploy', 'teardown', 'cancel', 'check', 'resolve', 'delete']);
    await admin.context().close();
  });
});
