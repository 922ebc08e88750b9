// Starting an attempt: /bin/sh supervisor.sh in its own session, so neither a signal to the
// server's group nor the server's exit reaches it.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SUPERVISOR_SCRIPT = fileURLToPath(new URL('./supervisor.sh', import.meta.url));

export interface SpawnSupervisorOptions {
  /** The attempt's run dir; made absolute and created if missing. */
  dir: string;
  /** The plan argv, passed as separate arguments: never through a shell string. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * Spawns the supervisor. The returned child is unref'd; listen to 'exit' (0 = exit record
 * written, 125 = the supervisor could not record) and 'error'. The plan's own identity and
 * outcome come from the run dir (rundir.ts), not from this child.
 */
export function spawnSupervisor(opts: SpawnSupervisorOptions): ChildProcess {
  if (opts.argv.length === 0 || opts.argv[0] === '') throw new Error('spawnSupervisor: empty argv');
  // Absolute, because the supervisor runs in the plan's cwd.
  const dir = resolve(opts.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const child = spawn('/bin/sh', [SUPERVISOR_SCRIPT, dir, ...opts.argv], {
    detached: true,
    stdio: 'ignore',
    env: opts.env,
    cwd: opts.cwd,
  });
  child.unref();
  return child;
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where execvp would find argv0, as an absolute path, or null if it would not find an
 * executable file. A name with a slash is taken relative to cwd; a bare name is searched in
 * PATH (an empty entry means cwd, as execvp does; an unset PATH means "/bin:/usr/bin").
 */
export function resolveExecutable(
  argv0: string,
  PATH: string | undefined,
  cwd: string = process.cwd(),
): string | null {
  if (argv0 === '' || argv0.includes('\0')) return null;
  if (argv0.includes('/')) {
    const file = isAbsolute(argv0) ? argv0 : resolve(cwd, argv0);
    return isExecutableFile(file) ? file : null;
  }
  for (const entry of (PATH ?? '/bin:/usr/bin').split(delimiter)) {
    const file = resolve(cwd, entry, argv0);
    if (isExecutableFile(file)) return file;
  }
  return null;
}
