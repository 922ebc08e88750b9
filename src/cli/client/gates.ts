// What a waiting attempt waits for (SPEC §13), in words: `lifeline show` and `--follow` print these.
import type { WaitingGate } from '../../domain/types.ts';
import { compactJson } from './format.ts';

export function waitingText(w: Pick<WaitingGate, 'gate' | 'detail'>): string {
  const d = w.detail;
  if (w.gate === 'concurrency') {
    const pos = typeof d.position === 'number' ? `, position ${d.position} in its queue` : '';
    return `concurrency key ${String(d.key)}${pos}`;
  }
  if (w.gate === 'freeze' && d.freeze !== undefined) {
    return `freeze ${String(d.freeze)}${d.until ? ` until ${String(d.until)}` : ''}`;
  }
  if (w.gate === 'approval' && typeof d.role === 'string') {
    // Who may answer (SPEC §13.3): that role or above, never the token that asked.
    const who = d.role === 'admin' ? 'an admin' : `an ${d.role} or admin`;
    return `approval by ${who}${d.requested_by ? ` other than ${String(d.requested_by)}` : ''}`;
  }
  const rest = Object.keys(d).length > 0 ? ` ${compactJson(d)}` : '';
  return `${w.gate}${rest}`;
}
