// Human output: colours (only on a TTY, never with NO_COLOR), aligned tables, times and durations.
import pc from 'picocolors';

export type Colors = ReturnType<typeof pc.createColors>;

/**
 * Colour only on a terminal, never with NO_COLOR (https://no-color.org: set and not empty) or TERM=dumb.
 * FORCE_COLOR and CI are deliberately not honoured: output that is piped or captured stays plain.
 */
export function colorEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

export function colors(enabled: boolean): Colors {
  return pc.createColors(enabled);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

export function stripAnsi(s: string): string {
  return s.replace(ANSI, '');
}

/** Display width: ANSI codes take none; good enough for the Latin text and box symbols used here. */
export function width(s: string): number {
  return [...stripAnsi(s)].length;
}

/** Cuts a string to `max` visible characters, keeping its ANSI codes (and resetting them if it cut). */
export function truncate(s: string, max: number): string {
  if (width(s) <= max) return s;
  let out = '';
  let n = 0;
  let i = 0;
  const re = new RegExp(ANSI.source, 'y');
  while (i < s.length && n < max) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (m) {
      out += m[0];
      i += m[0].length;
      continue;
    }
    const ch = String.fromCodePoint(s.codePointAt(i)!);
    out += ch;
    i += ch.length;
    n++;
  }
  return `${out}\x1b[0m`;
}

export function pad(s: string, w: number): string {
  const n = width(s);
  return n >= w ? s : s + ' '.repeat(w - n);
}

/** Columns separated by two spaces, each as wide as its widest cell; the last column is not padded. */
export function table(headers: string[], rows: string[][], c: Colors, indent = ''): string[] {
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: string[]) =>
    indent +
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : pad(cell, widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => c.bold(c.dim(h)))), ...rows.map(line)];
}

const STATE_COLOR: Record<string, (c: Colors, s: string) => string> = {
  // deployment states
  pending: (c, s) => c.dim(s),
  deploying: (c, s) => c.cyan(s),
  ready: (c, s) => c.green(s),
  failed: (c, s) => c.red(s),
  unknown: (c, s) => c.bold(c.magenta(s)),
  tearing_down: (c, s) => c.cyan(s),
  torn_down: (c, s) => c.dim(s),
  // attempt states
  queued: (c, s) => c.dim(s),
  running: (c, s) => c.cyan(s),
  succeeded: (c, s) => c.green(s),
  cancelled: (c, s) => c.yellow(s),
};

/** A state word, coloured by state; with colour on it gets a dot in front, like a badge. */
export function badge(state: string | null | undefined, c: Colors): string {
  if (!state) return '-';
  const paint = STATE_COLOR[state];
  if (!paint) return state;
  return c.isColorSupported ? paint(c, `● ${state}`) : state;
}

/** The state word alone, coloured. */
export function stateWord(state: string | null | undefined, c: Colors): string {
  if (!state) return '-';
  const paint = STATE_COLOR[state];
  return paint ? paint(c, state) : state;
}

/** "just now", "42s ago", "3m ago", "5h ago", "2d ago"; "in 3m" for the future (clock skew). */
export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '-';
  const diff = now - t;
  const s = Math.round(Math.abs(diff) / 1000);
  let text: string;
  if (s < 5) return 'just now';
  if (s < 60) text = `${s}s`;
  else if (s < 3600) text = `${Math.floor(s / 60)}m`;
  else if (s < 86400) text = `${Math.floor(s / 3600)}h`;
  else if (s < 86400 * 60) text = `${Math.floor(s / 86400)}d`;
  else if (s < 86400 * 730) text = `${Math.floor(s / (86400 * 30))}mo`;
  else text = `${Math.floor(s / (86400 * 365))}y`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

/**
 * 0.3s, 12.4s, 3m 05s, 2h 07m, 3d 04h: rounded to the nearest of the last unit shown (3,995 ms is 4.0s,
 * 59.96 s is 1m 00s). The dashboard's duration() in web/js/format.js is the same rule, word for word
 * (test/web/duration.test.ts holds them together).
 */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 0) ms = 0;
  const two = (n: number) => String(n).padStart(2, '0');
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${two(s % 60)}s`;
  const m = Math.round(ms / 60_000);
  if (m < 1440) return `${Math.floor(m / 60)}h ${two(m % 60)}m`;
  const hr = Math.round(ms / 3_600_000);
  return `${Math.floor(hr / 24)}d ${two(hr % 24)}h`;
}

export function between(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from || !to) return null;
  const a = Date.parse(from);
  const b = Date.parse(to);
  return Number.isNaN(a) || Number.isNaN(b) ? null : b - a;
}

/** Elapsed time as a clock, for the live view: 00:07, 12:41, 1:02:03. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hh > 0 ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Local date and time, to the second: 2026-11-27 00:09:46. */
export function timestamp(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  );
}

/** Local time of day: 00:09:46. */
export function timeOfDay(iso: string | null | undefined): string {
  const t = timestamp(iso);
  return t.length > 9 ? t.slice(11) : t;
}

export function labelsText(labels: Record<string, string> | null | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}

export function compactJson(v: unknown): string {
  return JSON.stringify(v ?? {});
}

/** Time left as a short countdown: 28s, 3m 05s, 2h 07m, 3d 04h. */
export function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  if (s < 60) return `${s}s`;
  return duration(s * 1000);
}

/** The waiting automatic retry (SPEC §9.1): `retry 2/3 at 12:34:56 (in 28s)`, or `(due now)`. */
export function retryText(retry: { number: number; of: number; at: string }, now = Date.now()): string {
  const left = Date.parse(retry.at) - now;
  const when = Number.isNaN(left) ? '' : left > 0 ? ` (in ${countdown(left)})` : ' (due now)';
  return `retry ${retry.number}/${retry.of} at ${timeOfDay(retry.at)}${when}`;
}

/** A drifted deployment's mark in `ls` (SPEC §14.2): `drift:absent`, in yellow. */
export function driftMark(drift: { verdict: string } | null, c: Colors): string {
  return drift ? c.yellow(`drift:${drift.verdict}`) : '';
}

/** `show`'s drift line: `absent since 12:34:56 (3m ago), self-heal at 12:40:00 (in 2m 10s)`. */
export function driftText(
  drift: { since: string; verdict: string; heal_at: string | null },
  now = Date.now(),
): string {
  let text = `${drift.verdict} since ${timeOfDay(drift.since)} (${relativeTime(drift.since, now)})`;
  if (drift.heal_at) {
    const left = Date.parse(drift.heal_at) - now;
    text += `, self-heal at ${timeOfDay(drift.heal_at)}${left > 0 ? ` (in ${countdown(left)})` : ' (due now)'}`;
  }
  return text;
}
