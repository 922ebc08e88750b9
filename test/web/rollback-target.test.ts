// The dashboard's rollback target (web/js/views/deployment/reducer.js): the newest succeeded deploy attempt
// before the current one, as the server picks it (SPEC §9.2).
import { describe, expect, it } from 'vitest';
import { importWeb } from './web-module.ts';

interface Att {
  id: string;
  number: number;
  kind: string;
  state: string;
}
const { rollbackTarget } = await importWeb<{
  rollbackTarget(model: { dep: { current_attempt: Att | null }; attempts: Att[] }): Att | null;
}>('views/deployment/reducer.js');

const att = (number: number, kind: string, state: string): Att => ({
  id: `att_${number}`,
  number,
  kind,
  state,
});

describe('rollbackTarget', () => {
  it('skips the current attempt, teardowns and failures; newest first', () => {
    const attempts = [
      att(5, 'deploy', 'failed'),
      att(4, 'teardown', 'succeeded'),
      att(3, 'deploy', 'succeeded'),
      att(2, 'deploy', 'cancelled'),
      att(1, 'deploy', 'succeeded'),
    ];
    expect(rollbackTarget({ dep: { current_attempt: attempts[0] }, attempts })?.number).toBe(3);
    // A succeeded current attempt is not its own target.
    const later = [att(6, 'deploy', 'succeeded'), ...attempts];
    expect(rollbackTarget({ dep: { current_attempt: later[0] }, attempts: later })?.number).toBe(3);
  });

  it('is null when no earlier deploy succeeded', () => {
    const attempts = [att(2, 'deploy', 'failed'), att(1, 'deploy', 'unknown')];
    expect(rollbackTarget({ dep: { current_attempt: attempts[0] }, attempts })).toBeNull();
    expect(rollbackTarget({ dep: { current_attempt: null }, attempts: [] })).toBeNull();
  });
});
