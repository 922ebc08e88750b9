// The house as docs/architecture.md draws it: each folder of src/ imports only the layers below it, the
// HTTP layer reaches the lifecycle only through its API module (lifecycle/api.ts), and no files import
// each other in a circle (type-only and dynamic imports count: a circle of types is still two files that
// cannot be understood apart).
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../../src');

/** What each top-level part of src/ may import, besides itself. `lifecycle/api.ts` is the API module alone. */
const MAY_IMPORT: Record<string, string[]> = {
  domain: [],
  config: ['domain'],
  store: ['domain'],
  runner: ['domain', 'config'],
  lifecycle: ['domain', 'config', 'store', 'runner'],
  http: ['domain', 'config', 'lifecycle/api.ts', 'version.ts'],
  cli: ['domain', 'lifecycle/api.ts', 'version.ts', 'server.ts'],
  // The composition root: `lifeline serve` wires the store, the lifecycle and the HTTP app together.
  'server.ts': ['domain', 'config', 'store', 'runner', 'lifecycle', 'http', 'version.ts'],
  'version.ts': [],
};

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(full, out);
    else if (/\.(ts|mts|js|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

/** file (relative to src/) → the files of src/ it imports; and relative imports that name no such file. */
function importGraph(): { graph: Map<string, Set<string>>; unresolved: string[] } {
  const files = sourceFiles(SRC);
  const known = new Set(files);
  const graph = new Map<string, Set<string>>();
  const unresolved: string[] = [];
  for (const file of files) {
    const out = new Set<string>();
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
    for (const { fileName } of importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const target = path.resolve(path.dirname(file), fileName);
      if (!known.has(target)) unresolved.push(`${path.relative(SRC, file)} -> ${fileName}`);
      else if (target !== file) out.add(path.relative(SRC, target));
    }
    graph.set(path.relative(SRC, file), out);
  }
  return { graph, unresolved };
}

/** The part of src/ a file belongs to: its top folder, or the file itself at the top. */
const partOf = (rel: string) => rel.split('/')[0];

function allowed(from: string, to: string): boolean {
  const part = partOf(from);
  if (partOf(to) === part) return true;
  return (MAY_IMPORT[part] ?? []).some((p) => to === p || partOf(to) === p);
}

/** Strongly connected components of more than one file (Tarjan). */
function circles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('the layers of src/', () => {
  const { graph, unresolved } = importGraph();

  it('every relative import names a file of src/ (so none escapes the checks below)', () => {
    expect(unresolved).toEqual([]);
  });

  it('every part of src/ is in the layer table', () => {
    const parts = new Set([...graph.keys()].map(partOf));
    expect([...parts].filter((p) => !(p in MAY_IMPORT))).toEqual([]);
  });

  it('nothing imports upward, and http and cli see the lifecycle only through lifecycle/api.ts', () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) if (!allowed(from, to)) upward.push(`${from} -> ${to}`);
    }
    expect(upward).toEqual([]);
  });

  it('the API module imports nothing else of the lifecycle, so nothing there can loop back through it', () => {
    const mine = [...graph.get('lifecycle/api.ts')!].filter((t) => partOf(t) === 'lifecycle');
    expect(mine).toEqual([]);
  });

  it('no files import each other in a circle', () => {
    expect(circles(graph)).toEqual([]);
  });

  it('the checks above can fail: a made-up upward import and a made-up circle are found', () => {
    expect(allowed('http/fanout.ts', 'store/errors.ts')).toBe(false);
    expect(allowed('http/conditions.ts', 'lifecycle/idempotency.ts')).toBe(false);
    expect(allowed('store/events.ts', 'lifecycle/tx.ts')).toBe(false);
    expect(allowed('http/app.ts', 'lifecycle/api.ts')).toBe(true);
    const loop = new Map([
      ['a.ts', new Set(['b.ts'])],
      ['b.ts', new Set(['c.ts'])],
      ['c.ts', new Set(['a.ts'])],
      ['d.ts', new Set(['a.ts'])],
    ]);
    expect(circles(loop)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });
});
