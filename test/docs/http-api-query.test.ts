// Every query parameter of every route in the served OpenAPI document appears in the row of that route
// in docs/reference/http-api.md. (The log route once listed only `offset` while `limit` and `tail`
// existed.)
import fs from 'node:fs';
import path from 'node:path';
import { marked, type Tokens } from 'marked';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harness, type Harness } from '../http/helpers.ts';

const PAGE = path.resolve(import.meta.dirname, '../../docs/reference/http-api.md');

/** `GET /v1/x/{id}` → the text of the row's "body / query" cell, for every row of the page's tables. */
function routeRows(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const t of marked.lexer(markdown)) {
    if (t.type !== 'table') continue;
    const table = t as Tokens.Table;
    const col = table.header.findIndex((h) => /query/.test(h.text));
    if (col < 0) continue;
    for (const row of table.rows) {
      const m = /^([A-Z]+) `([^`]+)`/.exec(row[0].text.trim());
      if (m) rows.set(`${m[1]} ${m[2]}`, row[col].text);
    }
  }
  return rows;
}

let h: Harness;
let doc: { paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>> };

beforeAll(async () => {
  h = await harness();
  await h.app.ready();
  doc = h.app.swagger() as typeof doc;
});

afterAll(async () => {
  await h?.close();
});

describe('docs/reference/http-api.md', () => {
  it("names every query parameter of the OpenAPI document in its route's row", () => {
    const rows = routeRows(fs.readFileSync(PAGE, 'utf8'));
    const missing: string[] = [];
    let seen = 0;
    for (const [route, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        for (const p of op.parameters ?? []) {
          if (p.in !== 'query') continue;
          seen++;
          const key = `${method.toUpperCase()} ${route}`;
          const cell = rows.get(key);
          if (cell === undefined) missing.push(`${key}: no row`);
          else if (!new RegExp('`' + p.name + '[`=]').test(cell)) missing.push(`${key}: ${p.name}`);
        }
      }
    }
    expect(seen).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });
});
