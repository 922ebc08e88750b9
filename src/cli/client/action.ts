// What every client command shares: the API client from the environment, the output streams with their
// colour decision, and one error path. Problems print `error: <CODE>: <detail>` on stderr and exit 2;
// nothing ever prints a stack trace.
import { stripVTControlCharacters } from 'node:util';
import { ApiClient, ApiError, clientFromEnv, ConnectionError, UsageError, type FieldError } from './api.ts';
import { colorEnabled, colors, type Colors } from './format.ts';

/** Exit codes of SPEC §7. */
export const EXIT = { ok: 0, failed: 1, usage: 2, api: 2, unknown: 3, interrupted: 130 } as const;

export interface Out {
  /** stdout */
  out: NodeJS.WriteStream;
  err: NodeJS.WriteStream;
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
  out: NodeJS.WriteStream = process.stdout,
  err: NodeJS.WriteStream = process.stderr,
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

/** Waits until stdout and stderr have flushed, then exits with `code`. */
export async function exit(code: number): Promise<never> {
  await Promise.all(
    [process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))),
  );
  process.exit(code);
}

/**
 * Wraps a command's action: builds the context, runs it, and exits with what it returns (0 when nothing).
 * Any error is printed as `error: …` and exits 2.
 */
export function action<A extends unknown[]>(
  fn: (ctx: Ctx, ...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const o = makeOut();
    let code: number;
    try {
      const api = clientFromEnv();
      code = (await fn({ api, o }, ...args)) ?? EXIT.ok;
    } catch (err) {
      for (const line of errorLines(err, o.ce, Boolean(process.env.LIFELINE_TOKEN))) o.warn(line);
      code = exitCodeOf(err);
    }
    await exit(code);
  };
}
