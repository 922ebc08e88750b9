// The served /openapi.json passes `redocly lint` (recommended rules) with no error and no warning, so a
// client generator can trust it. The linter runs offline: the document is a local file, telemetry off.
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/engine.ts';
import { harness, type Harness } from './helpers.ts';

const run = promisify(execFile);
const REDOCLY = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');

interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: { severity: string; ruleId: string; message: string; location: { pointer?: string }[] }[];
}

/** Lints a document with the recommended ruleset and returns redocly's JSON report. */
async function lint(doc: unknown, dir: string, name: string): Promise<LintReport> {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(doc));
  const { stdout } = await run(
    process.execPath,
    [REDOCLY, 'lint', file, '--extends=recommended', '--format=json'],
    {
      cwd: dir, // no redocly.yaml there: the recommended rules and nothing else
      env: {
        ...process.env,
        REDOCLY_TELEMETRY: 'off',
        REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
        NO_COLOR: '1',
      },
      maxBuffer: 16 * 1024 * 1024,
    },
  ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' })); // exit 1 when it finds errors
  return JSON.parse(stdout) as LintReport;
}

const summary = (r: LintReport) =>
  r.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`).join('\n');

let h: Harness;
let doc: any;
let dir: string;
beforeAll(async () => {
  h = await harness({ auth: true });
  await h.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = h.app.server.address() as { port: number };
  const res = await fetch(`http://127.0.0.1:${port}/openapi.json`);
  expect(res.status).toBe(200);
  doc = await res.json();
  dir = tempDir('lifeline-lint-');
});
afterAll(async () => {
  await h?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('redocly lint on the served /openapi.json', () => {
  it('reports no error and no warning', async () => {
    const report = await lint(doc, dir, 'openapi.json');
    expect(summary(report)).toBe('');
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
  }, 60_000);

  it('does find problems in a document that lacks servers and license (the check can fail)', async () => {
    const broken = { ...doc, info: { ...doc.info, license: undefined }, servers: undefined };
    const report = await lint(broken, dir, 'broken.json');
    const rules = report.problems.map((p) => p.ruleId);
    expect(rules).toEqual(expect.arrayContaining(['no-empty-servers', 'info-license']));
  }, 60_000);

  it('types query parameters as what they are and points nowhere outside the repository', () => {
    const query = (p: string, m: string, name: string) =>
      doc.paths[p][m].parameters.find((x: any) => x.in === 'query' && x.name === name).schema;
    expect(query('/v1/events', 'get', 'after')).toMatchObject({ type: 'integer', minimum: 0 });
    expect(query('/v1/events', 'get', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 1000 });
    expect(query('/v1/deployments', 'get', 'limit')).toEqual({ type: 'integer', minimum: 1, maximum: 500 });
    expect(query('/v1/deployments/{ref}/attempts', 'get', 'limit').type).toBe('integer');
    expect(query('/v1/attempts/{id}/log', 'get', 'offset').type).toBe('integer');
    expect(query('/v1/events/stream', 'get', 'after').type).toBe('integer');
    expect(query('/v1/deployments/{ref}', 'delete', 'force')).toEqual({ type: 'boolean' });
    const text = JSON.stringify(doc);
    expect(text).not.toMatch(/SPEC|\.\.\/shared/);
  });
});
