// What every client command shares: the API client from the environment, the output streams with their
// colour decision, and one error path. Problems print `error: <CODE>: <detail>` on stderr and exit 2;
// nothing ever prints a stack trace.
import { stripVTControlCharacters } from 'node:util';
import { Command } from 'commander';
import { ApiClient, ApiError, clientFromEnv, ConnectionError, UsageError, type FieldError } from './api.ts';
import { colorEnabled, colors, type Colors } from './format.ts';

/** Exit codes of SPEC §7. */
export const EXIT = { ok: 0, failed: 1, usage: 2, api: 2, unknown: 3, interrupted: 130 } as const;

/** Where a command writes: process.stdout/stderr, or a plain Writable when run in-process (no terminal). */
export type Output = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/**
 * What a command reads and writes besides the server: the environment and the two output streams. The
 * process's own in `lifeline`; buffers in tests that run commands in-process (src/cli/run.ts). A command
 * that reads stdin (`-f -`, apply's question) reads the process's.
 */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: Output;
  stderr: Output;
}

export function processIo(): CliIo {
  return { env: process.env, stdout: process.stdout, stderr: process.stderr };
}

export interface Out {
  /** stdout */
  out: Output;
  err: Output;
  /** colours for stdout */
  c: Colors;
  /** colours for stderr */
  ce: Colors;
  /** stdout is a terminal that may be redrawn (live views, spinners): not TERM=dumb, not with NO_COLOR */
  tty: boolean;
  /** A plan's output for stdout: its colours kept on a terminal, stripped when piped or with NO_COLOR. */
  planText(text: string): string;
  print(line?: string): void;
  json(value: unknown): void;
  warn(line: string): void;
}

export function makeOut(
  out: Output = process.stdout,
  err: Output = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): Out {
  const colour = colorEnabled(out, env);
  const c = colors(colour);
  const ce = colors(colorEnabled(err, env));
  return {
    out,
    err,
    c,
    ce,
    // The status line's cursor codes are escape codes too: NO_COLOR asks for none, so no live view.
    tty: c.isColorSupported,
    planText: (text) => (colour ? text : stripVTControlCharacters(text)),
    print: (line = '') => void out.write(`${line}\n`),
    json: (value) => void out.write(`${JSON.stringify(value, null, 2)}\n`),
    warn: (line) => void err.write(`${line}\n`),
  };
}

export interface Ctx {
  api: ApiClient;
  o: Out;
}

/**
 * Formats any error for stderr, without a stack. `tokenSent`: whether LIFELINE_TOKEN was set, which
 * decides the hint for a 401 (set one, or the one set was not accepted).
 */
export function errorLines(err: unknown, ce: Colors, tokenSent = false): string[] {
  const head = ce.red(ce.bold('error:'));
  if (err instanceof ApiError) {
    const { detail, errors } = withoutRepeats(err.detail, err.errors);
    const lines = [`${head} ${err.code}: ${detail}`];
    for (const e of errors) lines.push(`  - ${e.field || '(body)'}: ${e.reason}`);
    if (err.code === 'AUTH_REQUIRED') {
      lines.push(
        tokenSent
          ? `  hint: the server did not accept the token in LIFELINE_TOKEN; check it against the server's auth.tokens`
          : `  hint: this server wants a token; set LIFELINE_TOKEN to one it accepts`,
      );
    }
    return lines;
  }
  if (err instanceof ConnectionError || err instanceof UsageError) return [`${head} ${err.message}`];
  const msg = err instanceof Error ? err.message : String(err);
  return [`${head} ${msg}`];
}

/**
 * A problem's detail often already lists its field errors (`invalid body: name: must match …`). Say each
 * thing once: one error that the detail states is the detail alone; several are the detail's lead-in
 * (`invalid body`) and the list.
 */
export function withoutRepeats(
  detail: string,
  errors: readonly FieldError[],
): { detail: string; errors: readonly FieldError[] } {
  if (errors.length === 0) return { detail, errors };
  const first = errors[0];
  const at = [`${first.field}: ${first.reason}`, `${first.field} ${first.reason}`]
    .map((form) => detail.indexOf(form))
    .filter((i) => i >= 0);
  if (at.length === 0) return { detail, errors };
  if (errors.length === 1) return { detail, errors: [] };
  const lead = detail.slice(0, Math.min(...at)).replace(/[\s:;,]+$/, '');
  return lead === '' ? { detail, errors } : { detail: lead, errors };
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof ApiError || err instanceof ConnectionError || err instanceof UsageError) return EXIT.api;
  return EXIT.api;
}

/** One run of the program: its io, and the exit code its command's action ended with. */
interface Run {
  io: CliIo;
  code: number | null;
}

const runs = new WeakMap<Command, Run>();

/**
 * Ties `io` to a program built for one run; the actions of its commands read it, and leave their exit
 * code in the returned record instead of exiting the process.
 */
export function bindRun(program: Command, io: CliIo): Run {
  const run: Run = { io, code: null };
  runs.set(program, run);
  return run;
}

/** The run of the program `cmd` belongs to (commander passes the command last to every action). */
function runOf(args: unknown[]): Run {
  const last = args.at(-1);
  if (!(last instanceof Command)) throw new Error('action called without its command');
  let cmd: Command = last;
  while (cmd.parent) cmd = cmd.parent;
  const run = runs.get(cmd);
  if (!run) throw new Error('program not bound to a run (build it with buildProgram)');
  return run;
}

/**
 * Wraps a command's action: builds the context, runs it, and records what it returns (0 when nothing) as
 * the run's exit code. Any error is printed as `error: …` and ends with 2.
 */
export function action<A extends unknown[]>(
  fn: (ctx: Ctx, ...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const run = runOf(args);
    const { env, stdout, stderr } = run.io;
    const o = makeOut(stdout, stderr, env);
    let code: number;
    try {
      const api = clientFromEnv(env);
      code = (await fn({ api, o }, ...args)) ?? EXIT.ok;
    } catch (err) {
      for (const line of errorLines(err, o.ce, Boolean(env.LIFELINE_TOKEN))) o.warn(line);
      code = exitCodeOf(err);
    }
    run.code = code;
  };
}
