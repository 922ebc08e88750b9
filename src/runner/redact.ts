// Secret masking for log lines, runner events and params (SPEC §8.9: mask first, then cut,
// so a cut can never leave a recognisable prefix of a secret unmasked).

export const MASK = '***';

/**
 * Returns a function that replaces every occurrence of any secret with "***". Each secret is
 * also matched in its JSON-string-escaped form (how it looks inside JSON a plan prints).
 * Longest first, so a secret that contains another is masked whole.
 */
export function makeRedactor(secrets: readonly string[]): (text: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) {
    if (typeof s !== 'string' || s === '') continue;
    forms.add(s);
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  if (forms.size === 0) return (text) => text;
  const pattern = [...forms]
    .sort((a, b) => b.length - a.length)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('|');
  const re = new RegExp(pattern, 'g');
  return (text) => text.replace(re, MASK);
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
