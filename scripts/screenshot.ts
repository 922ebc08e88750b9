// Makes docs/dashboard.png from a real run: starts `lifeline serve` with small demo plans, brings a handful
// of deployments into different states through the HTTP API (one of them by really losing an attempt's
// outcome), opens the dashboard in Debian's headless chromium and takes the picture.
//
//   npx tsx scripts/screenshot.ts [--out docs/dashboard.png] [--view list|deployment|both]
//
// Nothing is drawn by hand: every state, transition and log line on the picture was produced by the server.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { client, killAttempt, launchChromium, startServer, STEPS, waitUntil } from '../test/e2e/server.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../test/fixtures/plans');
const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'docs/dashboard.png' },
    view: { type: 'string', default: 'both' },
  },
});

const steps = (env: Record<string, string>, description: string) => ({
  description,
  deploy: [STEPS],
  teardown: [STEPS],
  env: { STEPS: '4', STEP_DELAY: '0.25', ...env },
  params: {
    type: 'object',
    properties: {
      replicas: { type: 'integer', minimum: 1, maximum: 20, description: 'how many copies to run' },
    },
    additionalProperties: false,
  },
});

const plans = {
  service: {
    ...steps({}, 'A web service behind the load balancer'),
    check: [path.join(FIXTURES, 'check.sh')],
  },
  migration: steps({ STEPS: '3', FAIL_RC: '3' }, 'A one-off database migration'),
  canary: {
    description: 'A slow canary rollout',
    deploy: [STEPS],
    teardown: [path.join(FIXTURES, 'ok.sh')],
    env: { STEPS: '400', STEP_DELAY: '0.5' },
    cancel_grace: '1s',
  },
};

type Dep = { id: string; name: string; state: string; current_attempt: { id: string } | null };
type Att = { id: string; state: string };

const server = await startServer({ plans });
const api = client(server.url);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function settle(name: string, states: string[]): Promise<Dep> {
  return waitUntil(
    async () => {
      const d = await api<Dep>('GET', `/v1/deployments/${name}`);
      return states.includes(d.state) ? d : null;
    },
    `${name} in ${states.join('/')}`,
    30_000,
  );
}

async function create(name: string, plan: string, extra: Record<string, unknown> = {}): Promise<Dep> {
  return api<Dep>('POST', '/v1/deployments', { name, plan, ...extra });
}

async function deploy(name: string, body: Record<string, unknown> = {}): Promise<Att> {
  return api<Att>('POST', `/v1/deployments/${name}/attempts`, body);
}

let running: Att | null = null;
try {
  // Oldest first: the list shows the newest on top.
  await create('docs-preview', 'service', { labels: { team: 'docs' } });
  await deploy('docs-preview');
  await settle('docs-preview', ['ready']);
  await api('POST', '/v1/deployments/docs-preview/teardown', { confirm: 'docs-preview' });

  await create('billing-migrate', 'migration', { labels: { team: 'billing' } });
  await deploy('billing-migrate');

  await create('edge-cache', 'canary', { labels: { team: 'platform' } });
  const lost = await deploy('edge-cache');

  await create('api-gateway', 'service', { params: { replicas: 3 }, labels: { team: 'platform' } });
  await deploy('api-gateway');

  await create('checkout', 'service', { params: { replicas: 6 }, labels: { team: 'web', tier: 'critical' } });
  await deploy('checkout');
  await settle('checkout', ['ready']);
  await sleep(1200);
  await deploy('checkout', { params: { replicas: 8 } });

  await create('analytics-staging', 'service', { labels: { team: 'data' } });

  // edge-cache: its outcome is lost (supervisor and plan killed), so Lifeline says `unknown`.
  await waitUntil(
    async () => (await api<Att>('GET', `/v1/attempts/${lost.id}`)).state === 'running',
    'running',
  );
  await sleep(1500);
  killAttempt(server.dataDir, lost.id);
  await settle('edge-cache', ['unknown']);

  await settle('checkout', ['ready']);
  await settle('api-gateway', ['ready']);
  await settle('billing-migrate', ['failed']);
  await settle('docs-preview', ['torn_down']);

  // search-frontend: still deploying when the picture is taken, its log filling.
  await create('search-frontend', 'canary', { labels: { team: 'search' } });
  running = await deploy('search-frontend');
  await sleep(4200);

  const browser = await launchChromium();
  try {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      deviceScaleFactor: 2,
      colorScheme: 'light',
      reducedMotion: 'reduce',
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const shots: { png: Buffer; height: number }[] = [];
    const view = args.view ?? 'both';
    /** The page from the top down to the bottom of `last` (plus a margin), at the viewport's width. */
    const shoot = async (last: string) => {
      await page.mouse.move(0, 0);
      const box = await page.locator(last).boundingBox();
      const height = Math.ceil((box ? box.y + box.height : 800) + 12);
      const png = await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: 1280, height } });
      shots.push({ png, height });
    };

    if (view === 'list' || view === 'both') {
      await page.goto(`${server.url}/`);
      await page.locator('tr[data-name="search-frontend"] [data-state="deploying"]').waitFor();
      await page.locator('#conn[data-status="live"]').waitFor();
      await shoot('.table-card');
    }
    if (view === 'deployment' || view === 'both') {
      await page.goto(`${server.url}/#/d/checkout`);
      await page.locator('[data-testid="log"]', { hasText: 'checkout: deploy done' }).waitFor();
      await page.locator('[data-testid="attempts"] [data-attempt-state="succeeded"]').first().waitFor();
      await page.locator('#conn[data-status="live"]').waitFor();
      await shoot('[aria-labelledby="attempts-title"]');
    }
    if (errors.length) throw new Error(`the page reported errors:\n${errors.join('\n')}`);

    let png: Buffer;
    if (shots.length === 1) png = shots[0].png;
    else {
      // The two views one above the other, laid out by the same browser from the two screenshots.
      const gap = 20;
      const frame = await context.newPage();
      const height = shots.reduce((sum, s) => sum + s.height, 0) + gap * (shots.length + 1);
      await frame.setViewportSize({ width: 1280 + 2 * gap, height });
      const img = (s: { png: Buffer; height: number }) =>
        `<img style="height:${s.height}px" src="data:image/png;base64,${s.png.toString('base64')}">`;
      await frame.setContent(
        `<style>body{margin:0;padding:${gap}px;background:#cfd5de;display:flex;flex-direction:column;gap:${gap}px}` +
          `img{display:block;width:1280px;border-radius:10px;box-shadow:0 4px 18px rgb(16 24 40/.16)}</style>` +
          shots.map(img).join(''),
      );
      png = await frame.screenshot();
    }
    fs.mkdirSync(path.dirname(args.out!), { recursive: true });
    fs.writeFileSync(args.out!, png);
    console.log(`wrote ${args.out} (${Math.round(png.length / 1024)} KiB)`);
  } finally {
    await browser.close();
  }
} finally {
  if (running) await api('POST', '/v1/deployments/search-frontend/cancel').catch(() => undefined);
  await sleep(300);
  await server.stop();
}
