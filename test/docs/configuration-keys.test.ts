// Every key the config file accepts (the zod schemas of src/config/schema.ts, read as the loader reads
// them) has its row in docs/reference/configuration.md, in the section that documents its mapping. The
// README sends readers there for every key; a key added to the schema without a row fails here.
import fs from 'node:fs';
import path from 'node:path';
import { marked, type Tokens } from 'marked';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { schemas } from '../../src/config/schema.ts';

const PAGE = path.resolve(import.meta.dirname, '../../docs/reference/configuration.md');

/**
 * Mappings documented in a section of their own (by heading), with their keys relative to them; every
 * other nested key is a dotted row of its parent's section (`server.host`, `verify.deploy`).
 */
const SECTIONS: Record<string, string> = {
  '': 'Top-level keys',
  'auth.tokens[]': 'auth',
  'plans.*': 'plans',
  'plans.*.retry': 'Automatic retry',
  'webhooks[]': 'webhooks',
};

interface Key {
  section: string;
  key: string;
}

/** Looks through optional, nullable and the input side of transforms, as allowedKeys does. */
function unwrap(s: z.core.$ZodType): z.core.$ZodType {
  for (;;) {
    const def = s._zod.def;
    if (def.type === 'optional' || def.type === 'nullable') s = (def as z.core.$ZodOptionalDef).innerType;
    else if (def.type === 'pipe') s = (def as z.core.$ZodPipeDef).in;
    else return s;
  }
}

function shapeOf(s: z.core.$ZodType): Record<string, z.core.$ZodType> | null {
  const u = unwrap(s);
  return u._zod.def.type === 'object' ? (u._zod.def as z.core.$ZodObjectDef).shape : null;
}

/** Every key under `schema` (at `at`, documented in section `container`), as the reference must list it. */
function keysOf(schema: z.core.$ZodType, at: string, container: string, out: Key[]): Key[] {
  const shape = shapeOf(schema);
  if (!shape) return out;
  for (const [name, child] of Object.entries(shape)) {
    const full = at === '' ? name : `${at}.${name}`;
    const rel = full.slice(container === '' ? 0 : container.length + 1);
    const here = (key: string) => out.push({ section: SECTIONS[container], key });
    // plans: a mapping of names to plans, each checked by the plan schema.
    const u = unwrap(child);
    const target =
      full === 'plans'
        ? { path: 'plans.*', schema: schemas().plan as z.core.$ZodType }
        : u._zod.def.type === 'array' && shapeOf((u._zod.def as z.core.$ZodArrayDef).element)
          ? { path: `${full}[]`, schema: (u._zod.def as z.core.$ZodArrayDef).element }
          : shapeOf(u)
            ? { path: full, schema: u }
            : null;
    if (!target) {
      here(rel);
    } else if (target.path in SECTIONS) {
      // A mapping with its own section: a row here names it, its keys are rows there.
      here(rel);
      keysOf(target.schema, target.path, target.path, out);
    } else {
      keysOf(target.schema, full, container, out);
    }
  }
  return out;
}

/** The first cells (`key`) of the tables under each `## heading` of the page. */
function rowsBySection(markdown: string): Map<string, Set<string>> {
  const rows = new Map<string, Set<string>>();
  let section = '';
  for (const t of marked.lexer(markdown)) {
    if (t.type === 'heading' && (t as Tokens.Heading).depth === 2) section = (t as Tokens.Heading).text;
    if (t.type !== 'table') continue;
    const set = rows.get(section) ?? new Set<string>();
    for (const row of (t as Tokens.Table).rows) {
      const m = /^`([^`]+)`$/.exec(row[0].text.trim());
      if (m) set.add(m[1]);
    }
    rows.set(section, set);
  }
  return rows;
}

describe('docs/reference/configuration.md', () => {
  const keys = keysOf(schemas().top as z.core.$ZodType, '', '', []);
  const rows = rowsBySection(fs.readFileSync(PAGE, 'utf8'));

  it('the schema walk finds the keys it should (so that an empty walk cannot pass)', () => {
    expect(keys).toContainEqual({ section: 'Top-level keys', key: 'server.host' });
    expect(keys).toContainEqual({ section: 'Top-level keys', key: 'database.pool_max' });
    expect(keys).toContainEqual({ section: 'auth', key: 'token_sha256' });
    expect(keys).toContainEqual({ section: 'plans', key: 'verify.teardown' });
    expect(keys).toContainEqual({ section: 'Automatic retry', key: 'max_backoff' });
    expect(keys).toContainEqual({ section: 'webhooks', key: 'secret_env' });
    expect(keys.length).toBeGreaterThan(40);
  });

  it('has a row for every key the config schema accepts, in the section of its mapping', () => {
    const missing = keys
      .filter((k) => !rows.get(k.section)?.has(k.key))
      .map((k) => `${k.key} (section "${k.section}")`);
    expect(missing).toEqual([]);
  });

  it('lists no key the schema does not accept', () => {
    const accepted = new Set(keys.map((k) => `${k.section}\0${k.key}`));
    const extra: string[] = [];
    for (const [section, set] of rows) {
      if (!Object.values(SECTIONS).includes(section)) continue;
      for (const key of set)
        if (!accepted.has(`${section}\0${key}`)) extra.push(`${key} (section "${section}")`);
    }
    expect(extra).toEqual([]);
  });
});
