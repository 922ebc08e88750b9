// `lifeline serve`: config, engine, HTTP app, listen; and a graceful stop on SIGTERM/SIGINT.
//
// Stopping closes the HTTP side first (no new connections, open event streams ended, in-flight requests
// finished), then the engine. Running attempts are detached processes: they keep running, and the next
// start of this instance (same data_dir) adopts them again.
import pino from 'pino';
import pinoPretty from 'pino-pretty';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from './config/load.ts';
import type { LifelineConfig } from './config/types.ts';
import { openLifeline, type Lifeline } from './lifecycle/engine.ts';
import { buildApp, REDACT_PATHS } from './http/app.ts';
import { missingPrograms } from './runner/programs.ts';
import { isLoopbackHost } from './http/origin.ts';

export { isLoopbackHost };

export interface ServeOptions {
  /** Config file; else LIFELINE_CONFIG, else ./lifeline.yaml. */
  configFile?: string;
  db?: string;
  host?: string;
  port?: number;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  logger?: pino.Logger;
}

export interface Server {
  app: FastifyInstance;
  engine: Lifeline;
  config: LifelineConfig;
  /** e.g. http://127.0.0.1:7400 */
  url: string;
  /** Graceful stop; safe to call more than once. */
  close(): Promise<void>;
}

/** A refusal to start that needs no stack trace: the message says what to change. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

export type LogFormat = 'json' | 'pretty';

/** `pretty` for a person at a terminal, one JSON line per record otherwise (what log shippers read). */
export function defaultLogFormat(env: NodeJS.ProcessEnv = process.env, tty = process.stdout.isTTY === true) {
  const asked = env.LIFELINE_LOG_FORMAT;
  if (asked === 'json' || asked === 'pretty') return asked;
  return tty && !env.CI ? 'pretty' : 'json';
}

export function createLogger(
  format: LogFormat = 'json',
  dest: NodeJS.WritableStream = process.stdout,
  env: NodeJS.ProcessEnv = process.env,
): pino.Logger {
  const opts: pino.LoggerOptions = {
    level: env.LIFELINE_LOG_LEVEL ?? 'info',
    // Redaction happens before either format sees the record: tokens and secrets stay out of both.
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (format === 'json')
    return dest === process.stdout ? pino(opts) : pino(opts, dest as pino.DestinationStream);
  const pretty = pinoPretty({
    destination: dest,
    sync: true,
    colorize: env.NO_COLOR === undefined && (dest as { isTTY?: boolean }).isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  return pino(opts, pretty);
}

export async function serve(opts: ServeOptions = {}): Promise<Server> {
  const config = loadConfig({
    file: opts.configFile,
    env: opts.env ?? process.env,
    overrides: { db: opts.db, host: opts.host, port: opts.port },
  });
  const { host, port } = config.server;
  if (config.auth === null && !isLoopbackHost(host)) {
    throw new StartupError(
      `refusing to listen on ${host} without authentication: configure auth.tokens in the config file, ` +
        'or listen on a loopback address (127.0.0.1, ::1, localhost)',
    );
  }
  const log = opts.logger ?? createLogger();
  // Told now rather than at the plan's first attempt; not a refusal: the file may appear later.
  for (const m of missingPrograms(config.plans)) {
    log.warn(m, `plan ${m.plan}: ${m.kind} program not found or not executable: ${m.program}`);
  }
  const engine = await openLifeline({ config, logger: log, role: 'server', port });
  let app: FastifyInstance;
  try {
    await engine.start();
    app = await buildApp({ api: engine, config, logger: log });
    await app.listen({ host, port });
  } catch (err) {
    await engine.close().catch(() => undefined);
    throw err;
  }
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${shownHost}:${actualPort}`;
  log.info({ url, auth: config.auth ? 'tokens' : 'none (loopback only)' }, `Lifeline listening on ${url}`);

  let closing: Promise<void> | null = null;
  return {
    app,
    engine,
    config,
    url,
    close() {
      closing ??= (async () => {
        try {
          await app.close(); // stops accepting; preClose ends the event streams
        } finally {
          await engine.close(); // attempts keep running: they are detached
        }
      })();
      return closing;
    },
  };
}

/** Stops the server on SIGTERM/SIGINT, then exits 0 (1 if the stop failed or took too long). */
export function stopOnSignals(server: Server, log: pino.Logger, graceMs = 15_000): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: closing streams and the store; running attempts keep running');
    const timer = setTimeout(() => {
      log.error('stop took too long; exiting');
      process.exit(1);
    }, graceMs);
    timer.unref();
    server.close().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err: (err as Error).message }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
