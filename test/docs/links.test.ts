// Every link in the repository's Markdown stays inside the repository and points at something that
// exists: a file or folder, and, for `file.md#anchor`, a heading of that file. A clone has nothing else.
import fs from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import { marked, type Token } from 'marked';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SKIP = new Set(['node_modules', 'data', 'dist', 'coverage']);
const WEB_SCHEMES = /^(https?|mailto):/i;

function markdownFiles(dir: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || SKIP.has(entry.name)) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) markdownFiles(full, out);
    else if (entry.name.endsWith('.md')) out.push(full);
  }
  return out;
}

/** The plain text of a heading as GitHub slugs it: code spans and links reduced to their text. */
function headingText(raw: string): string {
  return raw.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
}

/** The anchors GitHub makes for a Markdown text's headings. */
function anchorsOf(markdown: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  for (const t of marked.lexer(markdown)) {
    if (t.type === 'heading') anchors.add(slugger.slug(headingText((t as { text: string }).text)));
  }
  return anchors;
}

function linksOf(markdown: string): string[] {
  const hrefs: string[] = [];
  marked.walkTokens(marked.lexer(markdown), (t: Token) => {
    if ((t.type === 'link' || t.type === 'image') && typeof t.href === 'string') hrefs.push(t.href);
  });
  return hrefs;
}

/** What is wrong with each link of one Markdown text that lives at `file` (none = []). */
function linkProblems(file: string, markdown: string, root = ROOT): string[] {
  const problems: string[] = [];
  const where = path.relative(root, file);
  for (const href of linksOf(markdown)) {
    const bad = (why: string) => problems.push(`${where}: ${href}: ${why}`);
    if (WEB_SCHEMES.test(href)) continue;
    if (/^[a-z][a-z0-9+.-]*:/i.test(href)) {
      bad('not a web address or a path in the repository');
      continue;
    }
    const [rawPath, fragment] = href.split('#', 2);
    let target = file;
    if (rawPath !== '') {
      if (rawPath.startsWith('/')) {
        bad('an absolute path; link relative to this file');
        continue;
      }
      target = path.resolve(path.dirname(file), decodeURIComponent(rawPath));
      const rel = path.relative(root, target);
      if (rel.startsWith('..') || path.isAbsolute(rel)) {
        bad('points outside the repository');
        continue;
      }
      if (!fs.existsSync(target)) {
        bad('no such file');
        continue;
      }
    }
    if (fragment !== undefined && target.endsWith('.md')) {
      const text = target === file ? markdown : fs.readFileSync(target, 'utf8');
      if (!anchorsOf(text).has(decodeURIComponent(fragment))) bad(`no heading for #${fragment}`);
    }
  }
  return problems;
}

describe('Markdown links', () => {
  const files = markdownFiles(ROOT);

  it('finds the README and the reference', () => {
    const rel = files.map((f) => path.relative(ROOT, f));
    expect(rel).toEqual(expect.arrayContaining(['README.md', 'docs/reference/states.md']));
  });

  it('stay inside the repository and point at files and headings that exist', () => {
    const problems = files.flatMap((f) => linkProblems(f, fs.readFileSync(f, 'utf8')));
    expect(problems).toEqual([]);
  });

  it('the check catches links outside, to missing files and to missing headings', () => {
    const file = path.join(ROOT, 'docs', 'example.md');
    const md = [
      '# Title with `code`',
      'See [spec](../../shared/SPEC.md), [gone](missing.md), [abs](/etc/passwd), [f](file:///x),',
      '[bad anchor](reference/states.md#no-such-heading), [here](#nowhere).',
      'Fine: [states](reference/states.md#deployment-states), [self](#title-with-code),',
      '[top](../README.md), [web](https://example.org/), ![img](dashboard.png).',
    ].join('\n');
    expect(linkProblems(file, md).map((p) => p.split(': ').slice(1).join(': '))).toEqual([
      '../../shared/SPEC.md: points outside the repository',
      'missing.md: no such file',
      '/etc/passwd: an absolute path; link relative to this file',
      'file:///x: not a web address or a path in the repository',
      'reference/states.md#no-such-heading: no heading for #no-such-heading',
      '#nowhere: no heading for #nowhere',
    ]);
  });
});
