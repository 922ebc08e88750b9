// Issue 9 item 5 in a real browser (Debian's Chromium headless shell) against a real no-auth server: a page on
// another site fires a body-less POST at the API (no preflight is needed for it), and a name that resolves
// to 127.0.0.1 (DNS rebinding, simulated with chromium's host resolver rules) asks for the API. Both are
// refused and change nothing; the server's own page still writes.
import http from 'node:http';
import type net from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM } from '../helpers/chromium.ts';
import { harness, quiesce, snapshot, waitState, type Harness } from './helpers.ts';

let h: Harness;
let browser: Browser;
let evil: http.Server;
let api = '';
let evilOrigin = '';

beforeAll(async () => {
  h = await harness({ captureLogs: true });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  api = `http://127.0.0.1:${(h.app.server.address() as net.AddressInfo).port}`;
  const created = await h.app.inject({
    method: 'POST',
    url: '/v1/deployments',
    payload: { name: 'victim', plan: 'ok' },
  });
  expect(created.statusCode, created.body).toBe(201);

  // The attacker's site: another origin and another site (localhost is not 127.0.0.1).
  evil = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><title>evil</title><script>
      window.results = Promise.allSettled([
        fetch('${api}/v1/deployments/victim/attempts', { method: 'POST', mode: 'no-cors' }),
        fetch('${api}/v1/deployments/victim/attempts', { method: 'POST', mode: 'no-cors', body: '{}',
          headers: { 'content-type': 'text/plain' } }),
      ]).then((r) => r.map((x) => x.status));
    </script>`);
  });
  await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
  evilOrigin = `http://localhost:${(evil.address() as net.AddressInfo).port}`;

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--host-resolver-rules=MAP attacker.example 127.0.0.1',
    ],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((r) => evil?.close(r));
  await h?.close();
});

function requestLines(path: string): { status: number }[] {
  return h.logs.filter((l) => l.msg === 'request' && l.url === path) as unknown as { status: number }[];
}

describe('a browser acting for another site', () => {
  it('a cross-site page cannot start an attempt (the requests arrive and are refused 403)', async () => {
    const before = await snapshot(h.engine);
    const page = await browser.newPage();
    await page.goto(`${evilOrigin}/`);
    const outcomes = await page.evaluate(() => (window as unknown as { results: Promise<string[]> }).results);
    expect(outcomes).toEqual(['fulfilled', 'fulfilled']); // opaque answers: the page learns nothing
    await page.close();
    const lines = requestLines('/v1/deployments/victim/attempts');
    expect(lines.map((l) => l.status)).toEqual([403, 403]);
    expect(await snapshot(h.engine)).toEqual(before);
  });

  it('a rebound name (attacker.example → 127.0.0.1) gets 421 for the API and the dashboard', async () => {
    const before = await snapshot(h.engine);
    const page = await browser.newPage();
    const port = new URL(api).port;
    const res = await page.goto(`http://attacker.example:${port}/v1/deployments`);
    expect(res?.status()).toBe(421);
    expect(JSON.parse(await res!.text())).toMatchObject({ status: 421, code: 'FORBIDDEN' });
    expect((await page.goto(`http://attacker.example:${port}/`))?.status()).toBe(421);
    await page.close();
    expect(await snapshot(h.engine)).toEqual(before);
  });

  it("the server's own page writes as before (same origin)", async () => {
    const page = await browser.newPage();
    await page.goto(`${api}/`);
    const status = await page.evaluate(
      async (url) => (await fetch(url, { method: 'POST' })).status,
      `${api}/v1/deployments/victim/attempts`,
    );
    expect(status).toBe(202);
    await page.close();
    await waitState(h.app, 'victim', 'ready');
    await quiesce(h.engine);
  });
});
