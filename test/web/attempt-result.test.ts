// The attempts table's result column (web/js/views/deployment/attempts-table.js): an attempt that never ran
// says why, from its `detail`, so the dashboard tells what the API and `lifeline show` tell.
import { describe, expect, it } from 'vitest';
import { importWeb } from './web-module.ts';

interface Att {
  state: string;
  rc: number | null;
  reason: string | null;
  detail?: string | null;
  recovered?: boolean;
}
const { resultText } = await importWeb<{ resultText(a: Att): string }>('views/deployment/attempts-table.js');

describe('attempt result text', () => {
  it('a runner_error attempt shows its detail after the reason', () => {
    const a = {
      state: 'failed',
      rc: null,
      reason: 'runner_error',
      detail: 'program not found or not executable: /srv/plans/x.sh',
    };
    expect(resultText(a)).toBe('runner error: program not found or not executable: /srv/plans/x.sh');
  });

  it('an attempt that ran shows rc and reason only', () => {
    expect(resultText({ state: 'failed', rc: 2, reason: 'exit_nonzero', detail: null })).toBe(
      'rc 2 · exit nonzero',
    );
    expect(resultText({ state: 'succeeded', rc: 0, reason: null, detail: null })).toBe('rc 0');
  });
});
