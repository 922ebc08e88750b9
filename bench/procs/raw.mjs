// Raw spawn baseline, in a small Node process of its own: n no-ops, 8 at a time.
import { CONC, noop, serve } from './common.mjs';

serve(
  async (n) => {
    let left = n;
    await Promise.all(
      Array.from({ length: CONC }, async () => {
        while (left > 0) {
          left--;
          await noop();
        }
      }),
    );
  },
  async () => undefined,
);
