// What a launcher is, apart from the launchers themselves, so the runner client and the launcher
// choice (launcher.ts) can both name it without importing each other.
import type { EventEmitter } from 'node:events';
import type { SpawnSupervisorOptions } from './spawn.ts';

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

/** A check to run (SPEC §9.3, §14.2): no shell, no run dir, nothing recorded on disk. */
export interface CheckRequest {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Its deadline: the check's whole group is killed then. */
  timeoutMs: number;
  /**
   * A file for its output (a verifying check's, SPEC §9.3): stdout and stderr interleaved, the first
   * CHECK_OUTPUT_LINES lines and at most CHECK_OUTPUT_BYTES; the rest is read and dropped. Written
   * before `done` resolves. Without it the output is not kept.
   */
  output?: string;
}

export const CHECK_OUTPUT_LINES = 200;
export const CHECK_OUTPUT_BYTES = 1 << 20;

/** The server stopped while the check ran: the check was killed and has no outcome to record. */
export class CheckStopped extends Error {
  constructor() {
    super('the check was stopped with the server');
  }
}

/**
 * A running check: `done` resolves to its exit code, or null when a signal (or a failed start) ended
 * it; it rejects with CheckStopped when the server stopped under it.
 */
export interface RunningCheck {
  done: Promise<number | null>;
  /** Kills the check's whole group (harmless once it has ended). */
  kill(): void;
}

/**
 * Runs checks in their own process group, killed with it at the deadline and when this server dies.
 * The runner does it without forking the server; where there is no runner, the server spawns them.
 */
export interface CheckStarter {
  startCheck(req: CheckRequest): RunningCheck;
}
