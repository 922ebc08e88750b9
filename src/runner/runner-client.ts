// The server's side of runner.pl: starts the runner when none answers on the data dir's socket, sends
// it launch requests and turns its replies into supervisor handles. If the runner cannot be started,
// attempts are started by the fallback launcher (supervisor.sh) instead, so they still run.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Launcher, SupervisorHandle } from './launcher-api.ts';
import { untrustedSocket } from './owned.ts';
import type { SpawnSupervisorOptions } from './spawn.ts';

export const RUNNER_SCRIPT = fileURLToPath(new URL('./runner.pl', import.meta.url));
/** Where perl may be; the runner uses only modules of Debian's Essential perl-base. */
const PERL_PATHS = ['/usr/bin/perl', '/bin/perl', '/usr/local/bin/perl'];
/** The runner exits once no server has been connected this long; the supervisors it forked live on. */
const IDLE_SECONDS = 10;
/** How long a freshly spawned runner gets to listen before we fall back to supervisor.sh. */
const START_TIMEOUT_MS = 5000;
/** After a failed start the runner is tried again after this, doubling up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;
/** A unix socket path must fit sockaddr_un (108 bytes with its NUL). */
const MAX_SOCKET_PATH = 100;

let scriptHash: string | undefined;
/** The socket's name carries the script's hash: after an upgrade a new runner serves new attempts. */
export function runnerSocketName(): string {
  scriptHash ??= createHash('sha256').update(fs.readFileSync(RUNNER_SCRIPT)).digest('hex').slice(0, 12);
  return `runner-${scriptHash}.sock`;
}

export function findPerl(): string | null {
  for (const p of PERL_PATHS) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

class Handle extends EventEmitter implements SupervisorHandle {
  pid?: number;
  exitCode: number | null = null;
}

/** One NUL-terminated field per value, after its byte length: argv and env cannot contain NUL. */
function encodeLaunch(id: string, opts: SpawnSupervisorOptions): Buffer {
  const env = Object.entries(opts.env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const fields = ['L', id, path.resolve(opts.dir), opts.cwd, String(opts.argv.length), ...opts.argv];
  fields.push(String(env.length), ...env);
  for (const f of fields) if (f.includes('\0')) throw new Error('launch: a field contains NUL');
  const body = Buffer.from(fields.map((f) => `${f}\0`).join(''));
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
}

export interface RunnerClientOptions {
  log?: (msg: string) => void;
  /** The perl to run; found in the usual places when absent. */
  perl?: string | null;
  /** How long the runner stays up with no server connected (default 10 s). */
  idleSeconds?: number;
  /** How long a spawned runner gets to listen (default 5 s). */
  startTimeoutMs?: number;
  /** The first wait before trying the runner again after a failure (default 1 s; doubles to 60 s). */
  retryMinMs?: number;
}

export class RunnerClient implements Launcher {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket | null> | null = null;
  private queue: { id: string; opts: SpawnSupervisorOptions; request: Buffer; handle: Handle }[] = [];
  private pending = new Map<string, Handle>();
  private buffer = '';
  private nextId = 1;
  /** Request ids are unique across clients, so a reply can never be taken for another server's. */
  private readonly idPrefix = randomBytes(6).toString('hex');
  private dirFd: number | null = null;
  private progressAt = 0;
  /** Failed starts in a row, and when the runner may be tried again (supervisor.sh until then). */
  private failures = 0;
  private retryAt = 0;
  private closed = false;

  private readonly log: (msg: string) => void;

  constructor(
    private readonly dataDir: string,
    private readonly fallback: Launcher,
    private readonly opts: RunnerClientOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
  }

  start(opts: SpawnSupervisorOptions): SupervisorHandle {
    if (opts.argv.length === 0 || opts.argv[0] === '') throw new Error('launch: empty argv');
    fs.mkdirSync(path.resolve(opts.dir), { recursive: true, mode: 0o700 });
    if (this.closed || (!this.socket && Date.now() < this.retryAt)) return this.fallback.start(opts);
    const handle = new Handle();
    const id = `${this.idPrefix}-${this.nextId++}`;
    // Encoded now, so a field the runner cannot carry throws to the caller, not in a later callback.
    const request = encodeLaunch(id, opts);
    if (this.socket) this.send(this.socket, id, request, handle);
    else {
      this.queue.push({ id, opts, request, handle });
      void this.connect();
    }
    return handle;
  }

  lastProgressAt(): number {
    // Starting the runner is progress too: it is bounded by the start timeout, then supervisor.sh takes over.
    return this.connecting ? Date.now() : this.progressAt;
  }

  close(): void {
    this.closed = true;
    this.socket?.end();
    this.socket = null;
    if (this.dirFd !== null) fs.closeSync(this.dirFd);
    this.dirFd = null;
    for (const q of this.queue.splice(0)) this.startFallback(q.opts, q.handle);
  }

  private send(socket: net.Socket, id: string, request: Buffer, handle: Handle): void {
    this.pending.set(id, handle);
    socket.write(request);
  }

  /** Forwards a fallback supervisor's events to a handle already given out. */
  private startFallback(opts: SpawnSupervisorOptions, handle: Handle): void {
    try {
      const child = this.fallback.start(opts);
      handle.pid = child.pid;
      child.once('spawn', () => handle.emit('spawn'));
      child.on('exit', (code) => {
        handle.exitCode = code;
        handle.emit('exit', code);
      });
      child.on('error', (err) => handle.emit('error', err));
    } catch (err) {
      queueMicrotask(() => handle.emit('error', err));
    }
  }

  private socketPath(): string {
    const full = path.join(this.dataDir, runnerSocketName());
    if (Buffer.byteLength(full) <= MAX_SOCKET_PATH) return full;
    // Too long for sockaddr_un: reach it through a directory fd instead.
    this.dirFd ??= fs.openSync(this.dataDir, 'r');
    return `/proc/self/fd/${this.dirFd}/${runnerSocketName()}`;
  }

  private connect(): Promise<net.Socket | null> {
    this.connecting ??= this.open().then(({ socket, why }) => {
      this.connecting = null;
      if (!socket || this.closed) {
        if (socket) {
          // No listener is left on it (tryConnect removed its own): an EPIPE must not be uncaught.
          socket.on('error', () => {});
          socket.destroy();
        }
        if (!this.closed) {
          // Not for good: a slow start (a loaded machine) or a stale socket may be gone next time.
          const wait = Math.min(RETRY_MAX_MS, (this.opts.retryMinMs ?? RETRY_MIN_MS) * 2 ** this.failures);
          this.failures++;
          this.retryAt = Date.now() + wait;
          this.log(
            `the perl runner could not be used (${why}); attempts are started by supervisor.sh, ` +
              `the runner is tried again in ${Math.round(wait / 1000)} s`,
          );
        }
        for (const q of this.queue.splice(0)) this.startFallback(q.opts, q.handle);
        return null;
      }
      if (this.failures > 0) this.log('the perl runner answers again; attempts are started by it');
      this.failures = 0;
      this.retryAt = 0;
      this.attach(socket);
      for (const q of this.queue.splice(0)) this.send(socket, q.id, q.request, q.handle);
      return socket;
    });
    return this.connecting;
  }

  /** Why the socket must not be connected to (not ours), or null. */
  private untrusted(where: string): string | null {
    const why = untrustedSocket(where, fs.statSync(this.dataDir));
    return why && `refusing ${path.join(this.dataDir, runnerSocketName())}: ${why}`;
  }

  private async open(): Promise<{ socket: net.Socket | null; why: string }> {
    const where = this.socketPath();
    // Checked before every connect: launch requests carry raw params.
    let unsafe = this.untrusted(where);
    if (unsafe) return { socket: null, why: unsafe };
    const first = await tryConnect(where);
    if (first) return { socket: first, why: '' };
    const perl = this.opts.perl === undefined ? findPerl() : this.opts.perl;
    if (!perl) return { socket: null, why: 'no perl found' };
    // Its own session, no inherited output, a minimal environment: it outlives this server.
    const child = spawn(
      perl,
      [RUNNER_SCRIPT, runnerSocketName(), String(this.opts.idleSeconds ?? IDLE_SECONDS)],
      {
        cwd: this.dataDir,
        detached: true,
        stdio: 'ignore',
        env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' },
      },
    );
    let spawnError: NodeJS.ErrnoException | null = null;
    child.on('error', (err) => (spawnError = err));
    child.unref();
    const until = Date.now() + (this.opts.startTimeoutMs ?? START_TIMEOUT_MS);
    while (Date.now() < until && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 15));
      if ((unsafe = this.untrusted(where))) return { socket: null, why: unsafe };
      const s = await tryConnect(where);
      if (s) return { socket: s, why: '' };
    }
    const failed = spawnError as NodeJS.ErrnoException | null;
    const why = failed
      ? `${perl} could not be run: ${failed.code ?? failed.message}`
      : child.exitCode === null
        ? 'it did not listen in time'
        : `it exited with ${child.exitCode}`;
    return { socket: null, why };
  }

  private attach(socket: net.Socket): void {
    this.socket = socket;
    this.progressAt = Date.now();
    this.buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        this.reply(this.buffer.slice(0, nl));
        this.buffer = this.buffer.slice(nl + 1);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      // The supervisors live on (they are not the runner); whoever waits on them looks at the run dir.
      const lost = [...this.pending.values()];
      this.pending.clear();
      for (const h of lost) h.emit('exit', null);
    });
    socket.unref();
  }

  private reply(line: string): void {
    this.progressAt = Date.now();
    const [op, id, ...rest] = line.split(' ');
    const handle = this.pending.get(id);
    if (!handle) return;
    if (op === 'S') {
      handle.pid = Number(rest[0]);
      handle.emit('spawn');
    } else if (op === 'E') {
      this.pending.delete(id);
      handle.exitCode = Number(rest[0]);
      handle.emit('exit', handle.exitCode);
    } else if (op === 'F') {
      this.pending.delete(id);
      handle.emit('error', new Error(`runner: ${rest.join(' ')}`));
    }
  }
}

function tryConnect(where: string): Promise<net.Socket | null> {
  return new Promise((resolve) => {
    const s = net.connect(where);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => {
      s.destroy();
      resolve(null);
    });
  });
}
