// Drift on the dashboard (SPEC §14.2) in a real browser (Debian's Chromium headless shell) against a real
// `lifeline serve`: a ready deployment whose scheduled check turns absent gets a drift badge in the list
// and a callout on its page, live, and loses them when the check says up again.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { client, launchChromium, startServer, waitUntil, type RunningServer } from './server.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/plans');

let server: RunningServer;
let browser: Browser;
let api: ReturnType<typeof client>;
const pageErrors: string[] = [];

beforeAll(async () => {
  const plans = {
    watched: {
      description: 'Checked every second',
      deploy: [path.join(FIXTURES, 'ok.sh')],
      teardown: [path.join(FIXTURES, 'ok.sh')],
      check: [path.join(FIXTURES, 'check.sh')],
      check_every: '1s',
      verify: { deploy: false, teardown: false },
    },
  };
  [server, browser] = await Promise.all([startServer({ plans }), launchChromium()]);
  api = client(server.url);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  expect(pageErrors).toEqual([]);
});

async function open(hash = ''): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  return page;
}

describe('drift on the dashboard', () => {
  it('marks a drifted deployment in the list and on its page, live, and clears the mark', async () => {
    await api('POST', '/v1/deployments', { name: 'vm-1', plan: 'watched' });
    await api('POST', '/v1/deployments/vm-1/attempts', {});
    const dep = await waitUntil(async () => {
      const d = await api('GET', '/v1/deployments/vm-1');
      return d.state === 'ready' ? d : null;
    }, 'vm-1 ready');
    const page = await open();
    await page.locator('tr[data-name="vm-1"] .cell-state [data-state="ready"]').waitFor();
    await page.locator('#conn[data-status="live"]').waitFor();
    expect(await page.locator('tr[data-name="vm-1"] [data-testid="drift-badge"]').count()).toBe(0);

    // The world changes under it: the check now says absent.
    const ws = path.join(server.dataDir, 'workspaces', dep.id);
    fs.mkdirSync(ws, { recursive: true });
    fs.writeFileSync(path.join(ws, 'check_rc'), '3\n');
    const badge = page.locator('tr[data-name="vm-1"] [data-testid="drift-badge"][data-verdict="absent"]');
    await badge.waitFor({ timeout: 20_000 });
    expect(await badge.innerText()).toContain('drift: absent');
    // The state badge still says ready: drift is no state.
    await page.locator('tr[data-name="vm-1"] .cell-state [data-state="ready"]').waitFor();

    const detail = await open('#/d/vm-1');
    await detail.locator('.dep-head [data-testid="drift-badge"]').waitFor();
    const callout = detail.locator('[data-testid="drift-callout"]');
    await callout.waitFor();
    expect(await callout.innerText()).toContain('absent');

    fs.writeFileSync(path.join(ws, 'check_rc'), '0\n');
    await badge.waitFor({ state: 'detached', timeout: 20_000 });
    await callout.waitFor({ state: 'detached', timeout: 20_000 });
    await page.close();
    await detail.close();
  });
});
