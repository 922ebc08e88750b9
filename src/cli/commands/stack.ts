// `lifeline stack create -f FILE`, `stack ls`, `stack show NAME` (SPEC §12.5); runs in stack-run.ts.
import fs from 'node:fs';
import type { Command } from 'commander';
import { parse } from 'yaml';
import type { Stack } from '../../domain/stack-types.ts';
import { action } from '../client/action.ts';
import { UsageError } from '../client/api.ts';
import { registerRuns } from './stack-run.ts';
import {
  badge,
  compactJson,
  driftMark,
  labelsText,
  relativeTime,
  stateWord,
  table,
} from '../client/format.ts';

/** The spec file: YAML (JSON is YAML too). */
function readSpec(file: string): unknown {
  let text: string;
  try {
    text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new UsageError(`${file} is not valid YAML: ${(err as Error).message}`);
  }
}

function unitCount(s: Stack): string {
  const ready = s.units.filter((u) => u.state === 'ready').length;
  return `${ready}/${s.units.length} ready`;
}

export function register(program: Command): void {
  const stack = program
    .command('stack')
    .description('stacks: deployments made of units, in dependency order');

  stack
    .command('create')
    .description('create a stack and all its units (pending) from a spec file')
    .requiredOption('-f, --file <file>', 'the stack spec (YAML or JSON; - for stdin)')
    .option('--json', 'print the created stack as JSON')
    .action(
      action(async ({ api, o }, opts: { file: string; json?: boolean }) => {
        const s = await api.createStack(readSpec(opts.file));
        if (opts.json) return o.json(s);
        o.print(
          `created stack ${o.c.bold(s.name)} ${o.c.dim(`(${s.id})`)} with ${s.units.length} unit${s.units.length === 1 ? '' : 's'}: ${badge(s.state, o.c)}`,
        );
      }),
    );

  stack
    .command('ls')
    .alias('list')
    .description('list stacks, newest first')
    .option('--json', 'print {items, next_cursor} as JSON')
    .action(
      action(async ({ api, o }, opts: { json?: boolean }) => {
        const items = await api.allStacks();
        if (opts.json) return o.json({ items, next_cursor: null });
        if (items.length === 0) return o.print('No stacks.');
        const { c } = o;
        const rows = items.map((s) => [
          c.bold(s.name),
          badge(s.state, c),
          unitCount(s),
          s.active_run ? `${s.active_run.kind} ${stateWord(s.active_run.state, c)}` : c.dim('-'),
          relativeTime(s.updated_at),
          labelsText(s.labels),
        ]);
        for (const line of table(['NAME', 'STATE', 'UNITS', 'RUN', 'CHANGED', 'LABELS'], rows, c))
          o.print(line);
      }),
    );

  stack
    .command('show')
    .description('a stack: its units in dependency order with state, attempt and outputs; the active run')
    .argument('<name>', 'stack name or id')
    .option('--json', 'print the stack as JSON')
    .action(
      action(async ({ api, o }, name: string, opts: { json?: boolean }) => {
        const s = await api.getStack(name);
        if (opts.json) return o.json(s);
        // The active run's step of each unit (SPEC §12.4).
        const run = s.active_run ? await api.getRun(s.active_run.id).catch(() => null) : null;
        const steps = new Map((run?.steps ?? []).map((st) => [st.deployment_id, st.step] as const));
        const { c } = o;
        o.print(`${c.bold(s.name)} ${c.dim(`(${s.id})`)} ${badge(s.state, c)} version ${s.version}`);
        o.print(
          `on_failure: ${s.spec.on_failure}${Object.keys(s.labels).length ? `  labels: ${labelsText(s.labels)}` : ''}`,
        );
        o.print(
          s.active_run
            ? `run: ${s.active_run.id} ${s.active_run.kind} ${stateWord(s.active_run.state, c)}`
            : `run: ${c.dim('none active')}`,
        );
        const rows = s.units.map((u) => [
          String(u.depth),
          c.bold(u.deployment),
          u.drift ? `${badge(u.state, c)} ${driftMark(u.drift, c)}` : badge(u.state, c),
          u.current_attempt
            ? `#${u.current_attempt.number} ${u.current_attempt.kind} ${stateWord(u.current_attempt.state, c)}`
            : c.dim('-'),
          ...(run ? [stateWord(steps.get(u.deployment_id) ?? '-', c)] : []),
          u.after.length > 0 ? u.after.join(',') : c.dim('-'),
          Object.keys(u.outputs).length > 0 ? compactJson(u.outputs) : c.dim('-'),
        ]);
        const heads = ['DEPTH', 'UNIT', 'STATE', 'ATTEMPT', ...(run ? ['STEP'] : []), 'AFTER', 'OUTPUTS'];
        for (const line of table(heads, rows, c)) o.print(line);
      }),
    );

  registerRuns(stack);
}
