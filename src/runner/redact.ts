// Secret masking for log lines, runner events and params (SPEC §8.9: mask first, then cut,
// so a cut can never leave a recognisable prefix of a secret unmasked).

export const MASK = '***';

export interface Redactor {
  (text: string): string;
  /** The longest form looked for, in UTF-8 bytes: how much context a window needs on each side. */
  maxBytes: number;
  /** The text of `before + middle + after` with every match masked, returning only middle's part. */
  window(before: string, middle: string, after: string): string;
  /** Whether a JSON value (not a string) is, as JSON text, one of the secrets. */
  isSecretValue(value: unknown): boolean;
}

/**
 * Returns a function that replaces every occurrence of any secret with "***". Each secret (a string,
 * or a non-string's JSON text) is also matched in its JSON-string-escaped form (how it looks inside
 * JSON a plan prints), and a multi-line one line by line (output is masked a line at a time).
 * Longest first, so a secret that contains another is masked whole.
 */
export function makeRedactor(secrets: readonly string[]): Redactor {
  const forms = new Set<string>();
  const add = (s: string) => {
    if (s === '') return;
    forms.add(s);
    forms.add(JSON.stringify(s).slice(1, -1));
  };
  for (const s of secrets) {
    if (typeof s !== 'string') continue;
    add(s);
    if (/[\r\n]/.test(s)) for (const line of s.split(/\r?\n|\r/)) add(line.trim());
  }
  const values = new Set(secrets);
  const pattern = [...forms]
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|');
  const re = forms.size > 0 ? new RegExp(pattern, 'g') : null;
  const redact = ((text: string) => (re ? text.replace(re, MASK) : text)) as Redactor;
  redact.maxBytes = Math.max(0, ...[...forms].map((f) => Buffer.byteLength(f)));
  redact.window = (before, middle, after) => {
    if (!re) return middle;
    const full = before + middle + after;
    const from = before.length;
    const to = from + middle.length;
    let out = '';
    let at = from;
    for (const m of full.matchAll(re)) {
      const start = m.index;
      const end = start + m[0].length;
      if (end <= from || start >= to) continue;
      out += full.slice(at, Math.max(at, start)) + MASK;
      at = Math.min(end, to);
    }
    return out + full.slice(at, to);
  };
  redact.isSecretValue = (value) =>
    values.size > 0 && value !== null && typeof value !== 'string' && values.has(JSON.stringify(value));
  return redact;
}

/** Cuts text to at most `max` code points, never splitting a surrogate pair. */
export function cutLine(text: string, max = 4096): string {
  if (text.length <= max) return text;
  let i = 0;
  for (let n = 0; n < max && i < text.length; n++) {
    const c = text.charCodeAt(i);
    const isPair = c >= 0xd800 && c <= 0xdbff && i + 1 < text.length;
    i += isPair && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  return text.slice(0, i);
}

/** Copy of params with the given top-level keys' values replaced by "***". */
export function maskParams(
  params: Record<string, unknown>,
  secretKeys: Iterable<string>,
): Record<string, unknown> {
  const keys = new Set(secretKeys);
  // fromEntries defines properties, so a "__proto__" key stays a plain key.
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, keys.has(k) ? MASK : v]));
}

/**
 * Masks secrets in every string of a runner event, keys included, and any value whose JSON text is a
 * secret (a writeOnly integer or object); the structure stays as written. Recursion is safe: events
 * nested deeper than EVENT_MAX_DEPTH never get here.
 */
export function redactDeep(value: unknown, redact: Redactor): unknown {
  if (typeof value === 'string') return redact(value);
  if (redact.isSecretValue(value)) return MASK;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)]));
  }
  return value;
}
