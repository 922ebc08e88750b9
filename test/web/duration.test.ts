// One rule for durations in the dashboard and the CLI: rounded to the nearest of the last unit shown.
// Before, the dashboard rounded down and the CLI to nearest (3,995 ms was "3 s" and "4.0s").
import { describe, expect, it } from 'vitest';
import { duration as cliDuration } from '../../src/cli/client/format.ts';
import { importWeb } from './web-module.ts';

const { duration: webDuration } = await importWeb<{ duration(ms: number): string }>('format.js');

const CASES: [number, string][] = [
  [0, '0.0s'],
  [49, '0.0s'],
  [300, '0.3s'],
  [3_995, '4.0s'],
  [12_449, '12.4s'],
  [59_940, '59.9s'],
  [59_960, '1m 00s'],
  [185_000, '3m 05s'],
  [185_600, '3m 06s'],
  [3_599_600, '1h 00m'],
  [2 * 3_600_000 + 7 * 60_000, '2h 07m'],
  [2 * 3_600_000 + 7 * 60_000 + 31_000, '2h 08m'],
  [86_399_000, '1d 00h'],
  [3 * 86_400_000 + 4 * 3_600_000 + 1_900_000, '3d 05h'],
];

describe('duration: the same text in the dashboard and the CLI', () => {
  it.each(CASES)('%i ms is %s in both', (ms, text) => {
    expect(cliDuration(ms)).toBe(text);
    expect(webDuration(ms)).toBe(text);
  });

  it('agrees on every duration up to two days, in 97 ms steps', () => {
    const differ: string[] = [];
    for (let ms = 0; ms < 2 * 86_400_000; ms += ms < 200_000 ? 97 : 9_973) {
      if (webDuration(ms) !== cliDuration(ms))
        differ.push(`${ms} ms: ${webDuration(ms)} vs ${cliDuration(ms)}`);
    }
    expect(differ).toEqual([]);
  });
});
