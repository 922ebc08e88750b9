// Gates (SPEC §13): what may hold an accepted attempt before its process starts. Pure: no I/O, no clock.
//
// The extension point: a gate is a pure decision (this file, or a `gates-<name>.ts` beside it) given
// the attempt, its plan's config and what the store knows, answering `open`, `wait` (with the detail
// the API shows) or `refuse` (a 4xx, nothing written). The lifecycle (src/lifecycle/gates/) reads the
// store, asks the decision, and records a wait generically: one `attempt_gates` row and one
// `gate_waiting` event per gate that holds, one `gate_opened` when it lets go, whatever the gate.
import type { ErrorCode, GateName } from './types.ts';

export { GATE_NAMES, type GateName, type WaitingGate } from './types.ts';

export type GateVerdict =
  | { kind: 'open'; detail?: Record<string, unknown> }
  | {
      kind: 'wait';
      detail: Record<string, unknown>;
      /** The wait ends in a cancel after this long (e.g. queue_timeout); null: it may wait forever. */
      expiresInMs: number | null;
    }
  | { kind: 'refuse'; code: ErrorCode; detail: string };

/** The reason an attempt is cancelled with when its wait on a gate expires. */
export const EXPIRED_REASON: Record<GateName, 'queue_timeout' | 'approval_expired' | null> = {
  concurrency: 'queue_timeout',
  approval: 'approval_expired',
  freeze: null,
};

// ---- concurrency (§13.1) -----------------------------------------------------------------------------

export const LIMIT_MIN = 1;
export const LIMIT_MAX = 1000;
/** Longest key a template may produce: keys are stored, indexed and shown. */
export const KEY_MAX = 200;

export type KeyPart = { text: string } | { param: string };

/**
 * Parses a key template: plain text with `${params.NAME}` (NAME: letters, digits, `_`, `-`). Anything
 * else after a `$` (an unclosed `${`, another source than params, an empty name) is refused with why.
 */
export function parseKeyTemplate(t: string): { ok: true; parts: KeyPart[] } | { ok: false; reason: string } {
  if (t.length === 0) return { ok: false, reason: 'must not be empty' };
  if (t.length > KEY_MAX) return { ok: false, reason: `must be at most ${KEY_MAX} characters` };
  const parts: KeyPart[] = [];
  let i = 0;
  let text = '';
  while (i < t.length) {
    const c = t[i];
    if (c !== '$') {
      text += c;
      i++;
      continue;
    }
    if (t[i + 1] !== '{') {
      return { ok: false, reason: `a "$" at character ${i + 1} must start \${params.NAME}` };
    }
    const close = t.indexOf('}', i + 2);
    if (close === -1) return { ok: false, reason: `the "\${" at character ${i + 1} is never closed` };
    const inner = t.slice(i + 2, close);
    const m = /^params\.([A-Za-z0-9_-]+)$/.exec(inner);
    if (!m) {
      return {
        ok: false,
        reason: `"\${${inner}}" is not \${params.NAME} (only params can be used in a key)`,
      };
    }
    if (text) parts.push({ text });
    text = '';
    parts.push({ param: m[1] });
    i = close + 1;
  }
  if (text) parts.push({ text });
  return { ok: true, parts };
}

/** The key of an attempt: the template with its params filled in; a missing or non-scalar param fails. */
export function concurrencyKey(
  parts: readonly KeyPart[],
  params: Record<string, unknown>,
): { ok: true; key: string } | { ok: false; field: string; reason: string } {
  let key = '';
  for (const p of parts) {
    if ('text' in p) {
      key += p.text;
      continue;
    }
    const v = Object.hasOwn(params, p.param) ? params[p.param] : undefined;
    if (v === undefined || v === null) {
      return { ok: false, field: `params.${p.param}`, reason: 'is required by the plan’s concurrency key' };
    }
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      return {
        ok: false,
        field: `params.${p.param}`,
        reason: 'must be a string, number or boolean to be used in the plan’s concurrency key',
      };
    }
    key += String(v);
  }
  if (key.length > KEY_MAX)
    return { ok: false, field: 'params', reason: `make a concurrency key longer than ${KEY_MAX} characters` };
  return { ok: true, key };
}

export interface ConcurrencyView {
  key: string;
  limit: number;
  whenBusy: 'queue' | 'reject';
  queueTimeoutMs: number | null;
  /** Attempts holding a slot of the key now. */
  holders: readonly string[];
  /** Attempts waiting on the key ahead of this one (first come, first served). */
  ahead: number;
  /** Already waiting on this gate (a re-look), not a new arrival: reject applies to arrivals only. */
  waiting: boolean;
}

/**
 * A slot is free for this attempt when the holders and everyone queued ahead of it leave room: so a
 * new arrival never jumps the queue, and the head of the queue takes the first slot that frees.
 */
export function decideConcurrency(v: ConcurrencyView): GateVerdict {
  const free = v.limit - v.holders.length - v.ahead;
  if (free > 0) return { kind: 'open', detail: { key: v.key } };
  if (v.whenBusy === 'reject' && !v.waiting) {
    const shown = v.holders.slice(0, 10).join(', ');
    const more = v.holders.length > 10 ? ` and ${v.holders.length - 10} more` : '';
    return {
      kind: 'refuse',
      code: 'CONCURRENCY_LIMIT',
      detail: `concurrency key "${v.key}" is at its limit of ${v.limit}; held by ${shown || 'attempts ahead in its queue'}${more}`,
    };
  }
  return { kind: 'wait', detail: { key: v.key, position: v.ahead + 1 }, expiresInMs: v.queueTimeoutMs };
}
