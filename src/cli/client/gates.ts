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
  const rest = Object.keys(d).length > 0 ? ` ${compactJson(d)}` : '';
  return `${w.gate}${rest}`;
}
