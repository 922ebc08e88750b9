// `lifeline diff -f FILE` and `lifeline apply -f FILE` (SPEC §14.1): the plan printed like
// `terraform plan` (+ create, ~ update/deploy, - teardown/delete, ! blocked), then applied against its digest.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline/promises';
import type { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import type { ApplyPlan, ApplyResult } from '../../domain/apply-plan.ts';
import { action, EXIT, type Out } from '../client/action.ts';
import { UsageError, type ApiClient } from '../client/api.ts';

/** The file's documents: several YAML documents, or lists of them; a parse error names its line. */
export function readDocuments(file: string, text: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const d of Array.isArray(docs) ? docs : [docs]) {
    const err = d.errors[0];
    if (err) {
      const line = err.linePos?.[0]?.line;
      // The parser's first line ends with a colon before the excerpt it quotes.
      throw new UsageError(
        `${file}${line ? `:${line}` : ''}: ${err.message.split('\n')[0].replace(/:$/, '')}`,
      );
    }
    const v: unknown = d.toJS({ maxAliasCount: 100 });
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) out.push(...v);
    else out.push(v);
  }
  return out;
}

function load(file: string): unknown[] {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return readDocuments(file, text);
}

/** The default source: the file's base name without its extension. */
export function sourceOf(file: string, given?: string): string {
  if (given) return given;
  if (file === '-') throw new UsageError('reading stdin: name the source with --source');
  return path
    .basename(file)
    .replace(/\.(ya?ml|json)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-');
}

const show = (v: unknown) => JSON.stringify(v);

/** The plan as people read `terraform plan`; colours only where `o` keeps them. */
export function planLines(plan: ApplyPlan, o: Out): string[] {
  const { c } = o;
  const lines: string[] = [];
  const sign: Record<string, string> = {
    create: c.green('+'),
    update: c.yellow('~'),
    deploy: c.yellow('~'),
    teardown: c.red('-'),
    delete: c.red('-'),
    blocked: c.magenta('!'),
    unchanged: ' ',
  };
  for (const i of plan.items) {
    if (i.action === 'unchanged') continue;
    lines.push(
      `${sign[i.action]} ${i.kind} ${c.bold(i.name)}: ${i.action}${i.reason ? ` (${i.reason})` : ''}`,
    );
    for (const ch of i.changes) {
      if (!('from' in ch)) lines.push(`    ${c.green('+')} ${ch.path} = ${show(ch.to)}`);
      else if (!('to' in ch)) lines.push(`    ${c.red('-')} ${ch.path} = ${show(ch.from)}`);
      else lines.push(`    ${c.yellow('~')} ${ch.path}: ${show(ch.from)} -> ${show(ch.to)}`);
    }
    if (i.deploy.length > 0 && i.action !== 'create') lines.push(`    deploy: ${i.deploy.join(', ')}`);
  }
  const count = (a: string[]) => plan.items.filter((i) => a.includes(i.action)).length;
  lines.push(
    plan.changes
      ? `Plan: ${count(['create'])} to create, ${count(['update', 'deploy'])} to change, ${count(['teardown', 'delete'])} to remove, ${count(['blocked'])} blocked.`
      : `No changes.${count(['blocked']) > 0 ? ` ${count(['blocked'])} blocked.` : ''}`,
  );
  return lines;
}

interface Opts {
  file: string;
  source?: string;
  prune?: boolean;
  maxDelete?: string;
  yes?: boolean;
  follow?: boolean;
  json?: boolean;
}

function body(opts: Opts): Record<string, unknown> {
  const b: Record<string, unknown> = {
    source: sourceOf(opts.file, opts.source),
    documents: load(opts.file),
    prune: opts.prune === true,
  };
  if (opts.maxDelete !== undefined) {
    const n = Number(opts.maxDelete);
    if (!Number.isInteger(n) || n < 0) throw new UsageError('--max-delete must be a whole number');
    b.max_delete = n;
  }
  return b;
}

async function ask(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^(y|yes)$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** Waits for every run and attempt the apply started to end; 1 when one did not succeed. */
async function follow(api: ApiClient, res: ApplyResult, o: Out): Promise<number> {
  let code: number = EXIT.ok;
  for (const s of res.started) {
    const url = s.run_id ? `/v1/runs/${s.run_id}` : s.attempt_id ? `/v1/attempts/${s.attempt_id}` : null;
    if (!url) continue;
    for (;;) {
      const x = await api.json<{ state: string }>('GET', url);
      if (!['queued', 'running', 'waiting', 'pending', 'cancelling'].includes(x.state)) {
        o.print(`${s.kind} ${s.name}: ${s.action} ${x.state}`);
        if (x.state !== 'succeeded') code = EXIT.failed;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  return code;
}

function withFileOptions(cmd: Command): Command {
  return cmd
    .requiredOption(
      '-f, --file <file>',
      'stack specs and deployments (YAML, several documents or a list; - for stdin)',
    )
    .option('--source <name>', "the source name (default: the file's base name)")
    .option('--prune', 'remove what this source applied before and the file no longer names')
    .option('--max-delete <n>', 'the most objects a prune may remove (default 5)')
    .option('--json', 'print the plan (and what was started) as JSON');
}

export function register(program: Command): void {
  withFileOptions(program.command('diff'))
    .description('show what apply would do; exit 0 when nothing would change, 1 when something would')
    .action(
      action(async ({ api, o }, opts: Opts) => {
        const plan = await api.json<ApplyPlan>('POST', '/v1/apply/plan', { body: body(opts) });
        if (opts.json) o.json(plan);
        else for (const l of planLines(plan, o)) o.print(l);
        return plan.changes ? EXIT.failed : EXIT.ok;
      }),
    );

  withFileOptions(program.command('apply'))
    .description('show the plan, ask, and carry it out (only if nothing moved since the plan)')
    .option('--yes', 'do not ask')
    .option('--follow', 'wait for the runs and attempts started')
    .action(
      action(async ({ api, o }, opts: Opts) => {
        const b = body(opts);
        const plan = await api.json<ApplyPlan>('POST', '/v1/apply/plan', { body: b });
        if (!opts.json) for (const l of planLines(plan, o)) o.print(l);
        if (!plan.changes) return opts.json ? (o.json({ plan, started: [] }), EXIT.ok) : EXIT.ok;
        if (!opts.yes) {
          if (!process.stdin.isTTY)
            throw new UsageError('not a terminal: pass --yes to apply without asking');
          if (!(await ask('Apply these changes? (yes/no) '))) {
            o.warn('Nothing applied.');
            return EXIT.failed;
          }
        }
        const res = await api.json<ApplyResult>('POST', '/v1/apply', { body: { ...b, digest: plan.digest } });
        if (opts.json) o.json(res);
        else
          for (const s of res.started)
            o.print(
              `started ${s.action} of ${s.kind} ${s.name}${s.run_id ? ` (run ${s.run_id})` : s.attempt_id ? ` (attempt ${s.attempt_id})` : ''}`,
            );
        return opts.follow ? follow(api, res, o) : EXIT.ok;
      }),
    );
}
