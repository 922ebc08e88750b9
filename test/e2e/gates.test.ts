// The dashboard's gates (SPEC §13.4) in a real browser: a waiting attempt shows what holds it and since
// when; Approve/Reject are offered only to those the server would let (not the requester, not a viewer);
// an approval given from the page starts the attempt live; a concurrency queue shows its position, which
// moves when an attempt ahead leaves.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { FIXTURES } from '../helpers/engine.ts';
import {
  client,
  dashboardPlans,
  launchChromium,
  startServer,
  TOKENS,
  waitUntil,
  type RunningServer,
} from './server.ts';

let server: RunningServer;
let browser: Browser;
let operatorApi: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  const base = dashboardPlans() as Record<string, Record<string, unknown>>;
  [server, browser] = await Promise.all([
    startServer({
      auth: true,
      plans: {
        gated: { ...base.steps, approval: { deploy: true } },
        slot: {
          deploy: [path.join(FIXTURES, 'sleep.sh')],
          teardown: [path.join(FIXTURES, 'ok.sh')],
          env: { SLEEP_SECONDS: '60' },
          cancel_grace: '1s',
          concurrency: { key: 'box', limit: 1 },
        },
      },
    }),
    launchChromium(),
  ]);
  operatorApi = client(server.url, TOKENS.operator);
});

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

async function signedIn(token: string, hash: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#role:not([hidden])').waitFor();
  return page;
}

const gates = (page: Page) => page.locator('[data-testid="gates"]');
const buttons = (page: Page) =>
  gates(page)
    .locator('button')
    .evaluateAll((els) => els.map((e) => e.getAttribute('data-action')));

describe('dashboard: gates', () => {
  it('offers Approve only to another token with the role; an approval starts the attempt live', async () => {
    await operatorApi('POST', '/v1/deployments', { name: 'gate-1', plan: 'gated' });
    const attempt = await operatorApi('POST', '/v1/deployments/gate-1/attempts', {});

    // The requester may reject its own attempt, not approve it.
    const mine = await signedIn(TOKENS.operator, '#/d/gate-1');
    await gates(mine).locator('li[data-gate="approval"]').waitFor();
    expect(await gates(mine).locator('li[data-gate="approval"]').innerText()).toContain('operator-e2e');
    expect(await gates(mine).locator('li time').count()).toBe(1);
    expect(await buttons(mine)).toEqual(['reject']);
    await gates(mine).getByText('another token must approve it').waitFor();

    const viewer = await signedIn(TOKENS.viewer, '#/d/gate-1');
    await gates(viewer).locator('li[data-gate="approval"]').waitFor();
    expect(await buttons(viewer)).toEqual([]);

    const admin = await signedIn(TOKENS.admin, '#/d/gate-1');
    await gates(admin).locator('li[data-gate="approval"]').waitFor();
    expect(await buttons(admin)).toEqual(['approve', 'reject']);
    // A reason is required, and nothing is sent without one.
    await gates(admin).locator('[data-action="approve"]').click();
    await gates(admin).getByText('a reason is required').waitFor();
    expect((await operatorApi('GET', `/v1/attempts/${attempt.id}`)).waiting).toHaveLength(1);

    await gates(admin).getByLabel('Reason').fill('change window agreed');
    await gates(admin).locator('[data-action="approve"]').click();
    // Live, on every page: the gate goes, the attempt runs, the deployment ends ready.
    for (const page of [admin, mine, viewer]) {
      await gates(page).waitFor({ state: 'hidden', timeout: 20_000 });
      await page.locator('.dep-badge [data-state="ready"]').waitFor({ timeout: 20_000 });
    }
    const events = await operatorApi('GET', '/v1/deployments/gate-1/events?type=approval_granted');
    expect(events.items[0].data).toMatchObject({ approver: 'admin-e2e', reason: 'change window agreed' });
  });

  it('lets the requester reject its own waiting attempt', async () => {
    await operatorApi('POST', '/v1/deployments', { name: 'gate-2', plan: 'gated' });
    const attempt = await operatorApi('POST', '/v1/deployments/gate-2/attempts', {});
    const page = await signedIn(TOKENS.operator, '#/d/gate-2');
    await gates(page).locator('li[data-gate="approval"]').waitFor();
    await gates(page).getByLabel('Reason').fill('wrong params');
    await gates(page).locator('[data-action="reject"]').click();
    await gates(page).waitFor({ state: 'hidden', timeout: 20_000 });
    await page.locator('.dep-badge [data-state="pending"]').waitFor();
    const a = await operatorApi('GET', `/v1/attempts/${attempt.id}`);
    expect(a).toMatchObject({ state: 'cancelled', reason: 'rejected' });
  });

  it('shows a queue position that moves up when an attempt ahead leaves', async () => {
    for (const n of ['q-1', 'q-2', 'q-3']) {
      await operatorApi('POST', '/v1/deployments', { name: n, plan: 'slot' });
      await operatorApi('POST', `/v1/deployments/${n}/attempts`, {});
    }
    const page = await signedIn(TOKENS.viewer, '#/d/q-3');
    const position = gates(page).locator('[data-testid="queue-position"]');
    await position.waitFor();
    expect(await position.innerText()).toContain('position 2 in the queue');
    expect(await gates(page).locator('li[data-gate="concurrency"] code').innerText()).toBe('box');
    expect(await buttons(page)).toEqual([]);

    await operatorApi('POST', '/v1/deployments/q-2/cancel');
    await waitUntil(async () => (await position.innerText()).includes('position 1 in the queue'), 'moved up');
    await operatorApi('POST', '/v1/deployments/q-1/cancel');
    await gates(page).waitFor({ state: 'hidden', timeout: 20_000 });
    await page.locator('.dep-badge [data-state="deploying"]').waitFor();
    await operatorApi('POST', '/v1/deployments/q-3/cancel');
  });
});
