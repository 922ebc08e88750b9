// Invariant 12 (SPEC §13.4) from the events alone: fold every slot grant (`gate_opened` of the
// concurrency gate) and release (`attempt_end` with `released_slot`; a resolve or check of an unknown
// deployment frees its current attempt's) in seq order, and check after each event that no key has more
// than its limit of holders. Returns who holds what at the end. A resolve frees only the slot of the
// deployment's current attempt (the last one created): an older `unknown` one keeps its slot until it is
// settled late (docs/reference/gates.md).
import { expect } from 'vitest';

interface Ev {
  seq: number;
  type: string;
  deployment_id: string | null;
  attempt_id: string | null;
  data: Record<string, unknown> | string;
}

const dataOf = (e: Ev) =>
  (typeof e.data === 'string' ? JSON.parse(e.data) : e.data) as Record<string, unknown>;

export function foldSlots(events: readonly Ev[], limitOf: (key: string) => number): Map<string, Set<string>> {
  const held = new Map<string, Set<string>>();
  const keyOf = new Map<string, string>();
  const currentOf = new Map<string, string>();
  let maxSeen = 0;
  for (const e of [...events].sort((a, b) => Number(a.seq) - Number(b.seq))) {
    const d = dataOf(e);
    if (e.type === 'state_transition' && d.entity === 'attempt' && d.from === null && e.deployment_id)
      currentOf.set(e.deployment_id, e.attempt_id!);
    if (e.type === 'gate_opened' && d.gate === 'concurrency') {
      const key = (d.detail as { key: string }).key;
      const set = held.get(key) ?? new Set<string>();
      expect(set.has(e.attempt_id!), `${e.attempt_id} granted twice`).toBe(false);
      set.add(e.attempt_id!);
      held.set(key, set);
      keyOf.set(e.attempt_id!, key);
      maxSeen = Math.max(maxSeen, set.size);
      expect(set.size, `holders of ${key} at seq ${e.seq}`).toBeLessThanOrEqual(limitOf(key));
    } else if (e.type === 'attempt_end' && typeof d.released_slot === 'string') {
      const set = held.get(d.released_slot);
      expect(set?.has(e.attempt_id!), `${e.attempt_id} released a slot it did not hold`).toBe(true);
      set!.delete(e.attempt_id!);
    } else if (
      (e.type === 'state_transition' &&
        d.entity === 'deployment' &&
        (d.trigger === 'resolved' || d.trigger === 'check_result')) ||
      e.type === 'deployment_deleted'
    ) {
      const att = currentOf.get(e.deployment_id!);
      const key = att && keyOf.get(att);
      if (key) held.get(key)?.delete(att);
    }
  }
  return held;
}
