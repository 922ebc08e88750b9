// What the watcher's parts share: the instance, the launcher, the watched attempts and how to wake one.
import type { Launcher } from '../../runner/launcher.ts';
import type { Ctx } from '../context.ts';
import type { Watches } from './watches.ts';

export interface Host {
  ctx: Ctx;
  launcher: Launcher;
  watches: Watches;
  /** Look at the attempt soon (a state may have changed). */
  wake(id: string): void;
  /** From inside a step: look at it again in this run of rounds, first. */
  again(id: string): void;
  /** From inside a step: it has more output to read. */
  moreOutput(id: string): void;
}
