// Reading the files supervisor.sh writes into an attempt's run dir. A record counts only once its
// line ends with "\n" (identities are written in place, the exit record renamed into place), so a
// read sees a whole record or none; anything unparsable reads as null, a record that cannot be read
// (other than by not being there) throws.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { isAlive, parseIdentityLine, type ProcessIdentity } from './identity.ts';
import { readIfThere } from './read-if-there.ts';

export interface ExitRecord {
  rc: number;
  /** e.g. "SIGTERM" (or a number as text) when rc was 128+N; inferred from the shell convention. */
  signal: string | null;
  /** epoch milliseconds (written by older supervisors; else the record's mtime) */
  at: number;
}

export interface RunDirPaths {
  stdout: string;
  stderr: string;
  events: string;
  params: string;
  supervisor: string;
  process: string;
  exit: string;
}

export function runDirPaths(dir: string): RunDirPaths {
  return {
    stdout: join(dir, 'stdout'),
    stderr: join(dir, 'stderr'),
    events: join(dir, 'events.jsonl'),
    params: join(dir, 'params.json'),
    supervisor: join(dir, 'supervisor'),
    process: join(dir, 'process'),
    exit: join(dir, 'exit'),
  };
}

/** The file's text when it is one whole line (ends with "\n"), else null. */
function readSmall(file: string): string | null {
  const text = readIfThere(file);
  return text?.endsWith('\n') ? text : null;
}

export function readSupervisor(dir: string): ProcessIdentity | null {
  const text = readSmall(join(dir, 'supervisor'));
  return text === null ? null : parseIdentityLine(text);
}

export function readProcess(dir: string): ProcessIdentity | null {
  const text = readSmall(join(dir, 'process'));
  return text === null ? null : parseIdentityLine(text);
}

/**
 * The plan's identity, then its supervisor's: in the order opposite to their writing. The supervisor
 * records itself before it starts the plan, so a plan identity seen first means the supervisor's is
 * there for the second read. Read the other way round, a whole short attempt can run between the two
 * reads (a busy server is preempted there): no supervisor yet, then a plan already dead, while the
 * supervisor is still alive making its exit record durable, which reads as lost.
 */
export function readIdentities(dir: string): { proc: ProcessIdentity | null; sup: ProcessIdentity | null } {
  const proc = readProcess(dir);
  return { proc, sup: readSupervisor(dir) };
}

/** The plan or its supervisor is alive (identities read as readIdentities does). */
export function anyAlive({ proc, sup }: ReturnType<typeof readIdentities>): boolean {
  return (sup !== null && isAlive(sup)) || (proc !== null && isAlive(proc));
}

export function readExit(dir: string): ExitRecord | null {
  const text = readSmall(join(dir, 'exit'));
  const m = text === null ? null : /^(\d{1,3}) (-|SIG[A-Z0-9]+|\d{1,3})(?: (\d{1,16}))?$/.exec(text.trim());
  if (!m) return null;
  const rc = Number(m[1]);
  if (rc > 255) return null;
  let at = m[3] === undefined ? NaN : Number(m[3]);
  if (Number.isNaN(at)) {
    try {
      at = Math.round(statSync(join(dir, 'exit')).mtimeMs);
    } catch {
      return null;
    }
  }
  return { rc, signal: m[2] === '-' ? null : m[2], at };
}
