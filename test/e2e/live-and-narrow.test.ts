// The dashboard in a real browser: the phases card follows a running attempt live (it used to fill in only
// when the attempt ended); toasts answer only what the person did and go with the page they belong to
// (the verifying check after a deploy used to be toasted as if asked for, and toasts outlived their
// page); and the webhooks table keeps its captions at phone width (375 px).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import {
  client,
  dashboardPlans,
  launchChromium,
  startServer,
  waitUntil,
  type RunningServer,
} from './server.ts';

const GATED = path.join(import.meta.dirname, 'fixtures/gated-phases.sh');
const SECRET = `whsec_${Buffer.from('e2e-webhook-secret-0123456789').toString('base64')}`;

let server: RunningServer;
let browser: Browser;
let api: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  [server, browser] = await Promise.all([
    startServer({
      plans: { ...dashboardPlans(), gated: { deploy: [GATED], teardown: [GATED] } },
      // A receiver nobody listens on: the panel shows a failing webhook with its error.
      extra: { webhooks: [{ name: 'chat', url: 'http://127.0.0.1:9/hook', secret_env: 'E2E_HOOK_SECRET' }] },
      env: { E2E_HOOK_SECRET: SECRET },
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

async function open(hash: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
  const page = await (await browser.newContext({ viewport })).newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  return page;
}

async function settle(name: string, state: string) {
  await waitUntil(
    async () => (await api('GET', `/v1/deployments/${name}`)).state === state,
    `${name} ${state}`,
  );
}

const phaseNames = (page: Page) => page.locator('.phase-list li .phase-name').allInnerTexts();

describe('the phases card', () => {
  it('shows each phase while the attempt runs, the open one counting', async () => {
    const dep = await api('POST', '/v1/deployments', { name: 'ph-1', plan: 'gated' });
    const page = await open('#/d/ph-1');
    await page.locator('#conn[data-status="live"]').waitFor();
    await api('POST', '/v1/deployments/ph-1/attempts', {});
    const workspace = path.join(server.dataDir, 'workspaces', dep.id);

    await waitUntil(async () => (await phaseNames(page)).join() === 'build', 'phase build shown');
    // The open phase is marked so and counts up with the page's clock.
    const took = page.locator('.phase-list li[data-phase="build"] .phase-took');
    expect(await took.innerText()).toMatch(/…$/);
    const first = await took.innerText();
    await waitUntil(async () => (await took.innerText()) !== first, 'the open phase to count up');
    expect(await page.locator('[data-testid="phase-bar"] .phase-seg.phase-open').count()).toBe(1);

    fs.writeFileSync(path.join(workspace, 'go-ship'), '');
    await waitUntil(async () => (await phaseNames(page)).join() === 'build,ship', 'phase ship shown');
    expect(await page.locator('.phase-list li[data-phase="build"] .phase-took').innerText()).not.toMatch(
      /…$/,
    );
    expect((await api('GET', '/v1/deployments/ph-1')).state).toBe('deploying'); // still running

    fs.writeFileSync(path.join(workspace, 'go-end'), '');
    await settle('ph-1', 'ready');
    await waitUntil(
      async () => (await page.locator('[data-testid="phase-bar"] .phase-seg.phase-open').count()) === 0,
      'the last phase closed',
    );
    await page.close();
  });
});

describe('toasts', () => {
  const toasts = (page: Page) => page.locator('#toasts .toast').allInnerTexts();

  it('are not raised by the verifying check of a deploy; a check asked for is', async () => {
    await api('POST', '/v1/deployments', { name: 'to-1', plan: 'steps' });
    const page = await open('#/d/to-1');
    await page.locator('#conn[data-status="live"]').waitFor();
    await api('POST', '/v1/deployments/to-1/attempts', {});
    await settle('to-1', 'ready'); // steps has a check: ready only after the verifying check said up
    const events = await api('GET', '/v1/deployments/to-1/events?type=check_result');
    expect(events.items).toHaveLength(1);
    expect(events.items[0].data).toMatchObject({ verify: 'deploy', verdict: 'up' });
    await page.locator('.dep-badge [data-state="ready"]').waitFor();
    await page.waitForTimeout(500); // the stream has delivered the check_result by now
    expect((await toasts(page)).filter((t) => t.includes('Check of'))).toEqual([]);

    await page.locator('[data-action="check"]').click();
    await waitUntil(
      async () => (await toasts(page)).some((t) => t.startsWith('Check of to-1: up (rc 0)')),
      'the toast of the check asked for',
    );
    await page.close();
  });

  it('go when another page is shown, except the one said for that page', async () => {
    await api('POST', '/v1/deployments', { name: 'to-2', plan: 'steps' });
    const page = await open('#/d/to-2');
    await page.locator('#conn[data-status="live"]').waitFor();
    // An error toast stays until dismissed: on its own page.
    // (a string: vitest would rewrite an import() inside a function)
    await page.evaluate(
      `import('/js/dom.js').then((dom) => dom.toast('an error of this page', { kind: 'error' }))`,
    );
    expect(await toasts(page)).toEqual([expect.stringContaining('an error of this page')]);
    await page.getByRole('link', { name: 'Deployments' }).first().click();
    await page.waitForURL(/#\/$/);
    await page.getByRole('heading', { name: 'Deployments' }).waitFor();
    expect(await toasts(page)).toEqual([]);

    // Deleting moves to the list, and the toast saying so is the list's.
    await page.goto(`${server.url}/#/d/to-2`);
    await page.locator('[data-action="delete"]').click();
    await page
      .getByRole('dialog')
      .getByRole('button', { name: /^Delete/ })
      .click();
    await page.waitForURL(/#\/$/);
    await waitUntil(
      async () => (await toasts(page)).some((t) => t.includes('to-2 deleted')),
      'the deleted toast on the list',
    );
    await page.close();
  });
});

describe('the webhooks panel at 375 px', () => {
  it('keeps a caption on every value once the table is stacked', async () => {
    const page = await open('#/', { width: 375, height: 740 });
    const panel = page.locator('[data-testid="webhooks"]');
    await panel.locator('tr[data-webhook="chat"]').waitFor();
    const captions = await panel
      .locator('tr[data-webhook="chat"] td')
      .evaluateAll((tds) => tds.map((td) => getComputedStyle(td, '::before').content));
    expect(captions).toEqual([
      '"Name"',
      '"Status"',
      '"Delivered up to"',
      '"Pending"',
      '"Last error"',
      '"Next try"',
    ]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth - 375)).toBeLessThanOrEqual(0);
    await page.close();
  });
});
