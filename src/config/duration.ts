// Durations in the config file and in LIFELINE_* variables (SPEC §4): `500ms`, `30s`, `10m`, `1h`, `1d`,
// or a bare integer of milliseconds (a YAML number or a string of digits).

/** Longest duration accepted: Node's timers overflow above 2^31-1 ms (and then fire at once). */
export const MAX_DURATION_MS = 2_147_483_647;

/** Longest age a retention setting accepts (it is compared with timestamps, never a timer): 100 years. */
export const MAX_AGE_MS = 36_500 * 86_400_000;

export const DURATION_HINT = 'expected a duration like 30s, 10m or 1h';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+)(ms|s|m|h|d)?$/;

/** Parses without throwing: the duration in ms, or a plain reason (which never quotes the input). */
export function checkDuration(
  value: unknown,
  /** Longest accepted; MAX_DURATION_MS for anything that becomes a timer. */
  max = MAX_DURATION_MS,
): { ms: number } | { reason: string } {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) return { reason: DURATION_HINT };
    ms = value;
  } else if (typeof value === 'string') {
    const m = DURATION_RE.exec(value);
    if (!m) return { reason: DURATION_HINT };
    const unit = (m[2] ?? 'ms') as keyof typeof UNIT_MS;
    ms = Number(m[1]) * UNIT_MS[unit];
    if (!Number.isSafeInteger(ms)) return { reason: `${DURATION_HINT}; this one is too long` };
  } else {
    return { reason: DURATION_HINT };
  }
  if (ms > max) {
    return {
      reason:
        max === MAX_DURATION_MS
          ? `is too long: at most ${MAX_DURATION_MS}ms (about 24.8 days)`
          : `is too long: at most ${Math.floor(max / 86_400_000)}d`,
    };
  }
  return { ms };
}

/**
 * `parseDuration('10m') === 600_000`. Accepts `<n>ms|s|m|h|d` or a non-negative integer of ms
 * (number or digit string), up to MAX_DURATION_MS. Throws an Error with a plain reason otherwise.
 */
export function parseDuration(value: string | number): number {
  const r = checkDuration(value);
  if ('reason' in r) throw new Error(r.reason);
  return r.ms;
}
