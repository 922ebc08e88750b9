// A stack's drifted units on the dashboard (SPEC §14.2) in a real browser (Debian's Chromium headless shell)
// against a real `lifeline serve`: when a unit's scheduled check turns absent, the stack page marks that
// unit (and only it) with a drift badge and names it in the head, live, at desktop and phone width, and
// drops the marks when the check says up again.
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

async function open(hash: string, width: number): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${server.url}/${hash}`);
  return page;
}

const unit = (page: Page, name: string) => page.locator(`[data-testid="unit-${name}"]`);
const noSideways = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth);

describe('drift on the stack page', () => {
  it('marks the drifted unit, live, on a desktop and a phone, and clears the mark', async () => {
    await api('POST', '/v1/stacks', {
      name: 'lab',
      units: [
        { key: 'net', plan: 'watched' },
        { key: 'vm', plan: 'watched', after: ['net'] },
      ],
    });
    await api('POST', '/v1/stacks/lab/deploy', {});
    const stack = await waitUntil(async () => {
      const s = await api('GET', '/v1/stacks/lab');
      return s.state === 'ready' && s.active_run === null ? s : null;
    }, 'lab ready');
    const pages = [await open('#/s/lab', 1280), await open('#/s/lab', 375)];
    for (const page of pages) {
      await unit(page, 'lab-vm').locator('[data-testid="state-badge"][data-state="ready"]').waitFor();
      await page.locator('#conn[data-status="live"]').waitFor();
      expect(await page.locator('[data-testid="drift-badge"]').count()).toBe(0);
      expect(await page.locator('[data-testid="drifted-units"]').count()).toBe(0);
    }

    // The network goes away under its ready unit: its check now says absent.
    const net = stack.units.find((u: { key: string }) => u.key === 'net');
    const ws = path.join(server.dataDir, 'workspaces', net.deployment_id);
    fs.mkdirSync(ws, { recursive: true });
    fs.writeFileSync(path.join(ws, 'check_rc'), '3\n');
    for (const page of pages) {
      const badge = unit(page, 'lab-net').locator('[data-testid="drift-badge"][data-verdict="absent"]');
      await badge.waitFor({ timeout: 20_000 });
      expect(await badge.innerText()).toContain('drift: absent');
      expect(await badge.isVisible()).toBe(true);
      // Drift is no state: the unit and the stack still say ready; only the drifted unit is marked.
      expect(
        await unit(page, 'lab-net').locator('[data-testid="state-badge"]').getAttribute('data-state'),
      ).toBe('ready');
      expect(await unit(page, 'lab-net').getAttribute('data-drift')).toBe('absent');
      expect(await unit(page, 'lab-vm').locator('[data-testid="drift-badge"]').count()).toBe(0);
      expect(await page.locator('[data-testid="drifted-units"]').innerText()).toBe('net');
      expect(await noSideways(page)).toBe(true);
    }

    fs.writeFileSync(path.join(ws, 'check_rc'), '0\n');
    for (const page of pages) {
      await unit(page, 'lab-net')
        .locator('[data-testid="drift-badge"]')
        .waitFor({ state: 'detached', timeout: 20_000 });
      expect(await page.locator('[data-testid="drifted-units"]').count()).toBe(0);
      await page.close();
    }
  });
});
