// The test harness itself (issue 16): a `lifeline serve` that exits before it answers fails the boot
// at once, with the server's own words, instead of being polled for the rest of a minute.
import { expect, it } from 'vitest';
import { TestServer } from './helpers.ts';

it('a server that exits at start fails TestServer.start at once, with its log', async () => {
  const started = Date.now();
  const err = await TestServer.start({ bad: { deploy: 'not-an-argv-list' } }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toMatch(/lifeline serve exited early \(code \d+\)/);
  expect((err as Error).message).toMatch(/plans\.bad\.deploy: expected a list of strings/);
  // The old harness kept polling /v1/health for its whole 60 s.
  expect(Date.now() - started).toBeLessThan(55_000);
});
