// The `freezes:` list of the config file (SPEC §13.2): scheduled freezes. Times are ISO-8601 with a
// zone (`2026-12-14T08:00:00Z`); a freeze whose `until` is not after its `from` is refused at load.
import { z } from 'zod';
import type { Freeze } from '../domain/freeze.ts';
// The plan-name rule of schema.ts, repeated: schema.ts imports this file.
const PLAN_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
export const TIME_HINT = 'expected a time with its zone, like 2026-12-14T08:00:00Z';

/** A time as written (string with a zone; YAML 1.1 timestamps arrive as Date) → ms, or a reason. */
export function checkTime(v: unknown): number | { reason: string } {
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? { reason: TIME_HINT } : v.getTime();
  if (typeof v !== 'string' || !TIME_RE.test(v)) return { reason: TIME_HINT };
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? { reason: TIME_HINT } : ms;
}

function timeSchema() {
  return z.unknown().transform((v, zc) => {
    const r = checkTime(v);
    if (typeof r !== 'number') {
      zc.addIssue({ code: 'custom', message: r.reason });
      return z.NEVER;
    }
    return r;
  });
}

/** `match: {plans?, labels?, kinds?}`, shared with POST /v1/freezes. */
export function freezeMatchSchema() {
  return z.strictObject({
    plans: z
      .array(z.string().regex(PLAN_NAME_RE, 'expected a plan name'))
      .min(1, 'list at least one plan, or leave plans out to match every plan')
      .optional(),
    labels: z.record(z.string().regex(LABEL_KEY_RE, 'expected a label key'), z.string().max(256)).optional(),
    kinds: z
      .array(z.enum(['deploy', 'teardown'], { error: 'expected deploy or teardown' }))
      .min(1, 'list deploy and/or teardown, or leave kinds out to match both')
      .optional(),
  });
}

export function freezesSchema() {
  return z.array(
    z
      .strictObject({
        name: z.string().regex(NAME_RE, 'expected lower-case letters, digits, _ and - (at most 63)'),
        match: freezeMatchSchema().nullish(),
        from: timeSchema().optional(),
        until: timeSchema(),
        when: z.enum(['queue', 'reject'], { error: 'expected queue or reject' }).optional(),
      })
      .superRefine((f, zc) => {
        if (f.from !== undefined && f.until <= f.from) {
          zc.addIssue({ code: 'custom', path: ['until'], message: 'must be after from' });
        }
      }),
  );
}

type Parsed = z.output<ReturnType<typeof freezesSchema>>;

/** The file's freezes as the gate reads them; a name used twice goes to `add`. */
export function resolveFreezes(
  list: Parsed,
  add: (path: (string | number)[], message: string) => void,
): Freeze[] {
  const out: Freeze[] = [];
  list.forEach((f, i) => {
    if (list.findIndex((o) => o.name === f.name) < i) {
      add(['freezes', i, 'name'], `duplicate freeze name "${f.name}"`);
      return;
    }
    const match = f.match ?? {};
    out.push({
      name: f.name,
      match: {
        ...(match.plans ? { plans: match.plans } : {}),
        ...(match.labels ? { labels: match.labels } : {}),
        ...(match.kinds ? { kinds: match.kinds } : {}),
      },
      fromMs: f.from ?? null,
      untilMs: f.until,
      when: f.when ?? 'queue',
      source: 'config',
    });
  });
  return out;
}
