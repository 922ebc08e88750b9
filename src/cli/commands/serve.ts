// `lifeline serve [--config F] [--db URL] [--host H] [--port P]` (SPEC §7).
// A failure to start prints one clear message to stderr (no stack trace) and exits 2 for a config
// problem (the file, a LIFELINE_* variable or a flag: a usage error, SPEC §7) or a data dir another user
// owns, and 1 for anything else.
import fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';

function parsePort(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('expected a port number from 0 to 65535');
  }
  return Number(value);
}

type LogFormat = 'json' | 'pretty';

function parseLogFormat(value: string): LogFormat {
  if (value !== 'json' && value !== 'pretty') throw new InvalidArgumentError('expected json or pretty');
  return value;
}

/** What to print when the server cannot start: the cause, without a stack. */
export function startupMessage(err: unknown): string {
  // By name: the server modules are loaded lazily, so client commands start without fastify and kysely.
  if (err instanceof Error && ['ConfigError', 'LockHeld', 'StartupError', 'UnsafePath'].includes(err.name))
    return err.message;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.code === 'EADDRINUSE') return `address ${e.address ?? ''}:${e.port ?? ''} is already in use`;
  if (e?.code === 'EADDRNOTAVAIL') return `address ${e.address ?? ''} is not available on this machine`;
  if (e?.code === 'EACCES') return `not allowed to listen on ${e.address ?? ''}:${e.port ?? ''}`;
  if (e?.code === 'ENOTFOUND') return `host ${(e as { hostname?: string }).hostname ?? ''} not found`;
  return (err as Error)?.message ?? String(err);
}

/** 2 for a config error (like any usage error), 1 when the server could not start for another reason. */
export function startupExitCode(err: unknown): number {
  // A data dir another user owns is a setup error, like a bad config.
  return err instanceof Error && (err.name === 'ConfigError' || err.name === 'UnsafePath') ? 2 : 1;
}

/**
 * `npx lifeline serve` runs the server under npm's `sh -c`, and npm passes a SIGTERM (`kill $!`) to that
 * shell only: the shell dies and the server would be left running, orphaned. So when the server was
 * started by npm through a shell and that shell goes away, it stops as if it had been sent SIGTERM.
 */
export function stopWithNpmShell(env: NodeJS.ProcessEnv = process.env, pollMs = 500): void {
  if (!env.npm_command) return;
  const parent = process.ppid;
  let comm = '';
  try {
    comm = fs.readFileSync(`/proc/${parent}/comm`, 'utf8').trim();
  } catch {
    return; // no /proc: nothing to watch
  }
  if (!['sh', 'dash', 'bash'].includes(comm)) return;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    process.kill(process.pid, 'SIGTERM');
  }, pollMs);
  timer.unref();
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('run the Lifeline server (HTTP API, runner and recovery)')
    .option('--config <file>', 'config file (default: $LIFELINE_CONFIG or ./lifeline.yaml)')
    .option('--db <url>', 'database URL: sqlite:<path> or postgres://… (overrides the config)')
    .option('--host <host>', 'address to listen on (overrides the config)')
    .option('--port <port>', 'port to listen on (overrides the config)', parsePort)
    .option(
      '--log-format <format>',
      'server log: json (one JSON line per record) or pretty (for a terminal); default: pretty on a terminal, ' +
        'else json, or $LIFELINE_LOG_FORMAT',
      parseLogFormat,
    )
    .action(
      async (opts: { config?: string; db?: string; host?: string; port?: number; logFormat?: LogFormat }) => {
        const { createLogger, defaultLogFormat, serve, stopOnSignals } = await import('../../server.ts');
        const log = createLogger(opts.logFormat ?? defaultLogFormat());
        try {
          const server = await serve({
            configFile: opts.config,
            db: opts.db,
            host: opts.host,
            port: opts.port,
            logger: log,
          });
          stopOnSignals(server, log);
          stopWithNpmShell();
        } catch (err) {
          process.stderr.write(`lifeline serve: ${startupMessage(err)}\n`);
          process.exit(startupExitCode(err));
        }
      },
    );
}
