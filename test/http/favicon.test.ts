// /favicon.ico, which browsers ask for whatever the page links, is the dashboard's icon (it was a 404),
// public like the page, and unknown paths still answer the API's problem+json 404.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/dialect.ts';
import { harness, type Harness } from './helpers.ts';

const ICON = fs.readFileSync(path.resolve(import.meta.dirname, '../../web/favicon.svg'), 'utf8');

describe.each(DIALECTS)('the favicon (%s)', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ auth: true, dialect });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('GET /favicon.ico answers the SVG icon without a token', async () => {
    const res = await h.app.inject({ url: '/favicon.ico' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(res.body).toBe(ICON);
    expect(res.headers['content-security-policy']).toMatch(/default-src 'self'/);
  });

  it('other unknown paths are still a problem+json 404', async () => {
    const res = await h.app.inject({ url: '/favicon.png' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
