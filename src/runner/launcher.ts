// Which supervisor starts an attempt: the long-lived perl runner (runner.pl, one per data dir, a forked
// supervisor per attempt) or supervisor.sh spawned per attempt. Both write the same run-dir records,
// so everything after the start (tailing, signals, recovery) is the same. Checks go the same way: the
// runner forks them, or (supervisor `sh`) this process spawns them.
import type { LifelineConfig } from '../config/types.ts';
import { spawnCheck } from './check-process.ts';
import type { CheckRequest, CheckStarter, Launcher, RunningCheck, SupervisorHandle } from './launcher-api.ts';
import { RunnerClient } from './runner-client.ts';
import { spawnSupervisor, type SpawnSupervisorOptions } from './spawn.ts';

export type { CheckStarter, Launcher, RunningCheck, SupervisorHandle };

export class ShLauncher implements Launcher, CheckStarter {
  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    return spawnSupervisor(opts);
  }
  startCheck(req: CheckRequest): RunningCheck {
    return spawnCheck(req);
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
): Launcher & CheckStarter {
  return kind === 'perl' ? new RunnerClient(dataDir, new ShLauncher(), { log }) : new ShLauncher();
}
