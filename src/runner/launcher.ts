// Which supervisor starts an attempt: the long-lived perl runner (runner.pl, one per data dir, a forked
// supervisor per attempt) or supervisor.sh spawned per attempt. Both write the same run-dir records,
// so everything after the start (tailing, signals, recovery) is the same.
import type { EventEmitter } from 'node:events';
import type { LifelineConfig } from '../config/types.ts';
import { RunnerClient } from './runner-client.ts';
import { spawnSupervisor, type SpawnSupervisorOptions } from './spawn.ts';

/**
 * A started supervisor: emits 'exit' (code: 0 = exit record durable, 125 = it could not record,
 * null = no longer known, e.g. the runner connection was lost) and 'error'. Either means "look at
 * the run dir": the outcome itself is always read from there.
 */
export interface SupervisorHandle extends EventEmitter {
  /** The supervisor's pid, once known. */
  pid?: number;
  /** Its exit code, once it exited (as ChildProcess). */
  exitCode: number | null;
}

export interface Launcher {
  start(opts: SpawnSupervisorOptions): SupervisorHandle;
  /**
   * When the launcher last moved its queue of start requests on (0: it keeps none). A request still
   * waiting is not given up while the queue moves: a burst of hundreds is forked one by one.
   */
  lastProgressAt(): number;
  /** Stops talking to the runner; running supervisors and plans live on. */
  close(): void;
}

export class ShLauncher implements Launcher {
  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    return spawnSupervisor(opts);
  }
  lastProgressAt(): number {
    return 0; // spawned at once: nothing waits
  }
  close(): void {}
}

export function createLauncher(
  kind: LifelineConfig['supervisor'],
  dataDir: string,
  log?: (msg: string) => void,
): Launcher {
  return kind === 'perl' ? new RunnerClient(dataDir, new ShLauncher(), { log }) : new ShLauncher();
}
