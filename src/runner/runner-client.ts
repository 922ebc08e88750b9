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
import {
  CheckStopped,
  type CheckRequest,
  type CheckStarter,
  type Launcher,
  type RunningCheck,
  type SupervisorHandle,
} from './launcher-api.ts';
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
function encode(fields: string[]): Buffer {
  for (const f of fields) if (f.includes('\0')) throw new Error('launch: a field contains NUL');
  const body = Buffer.from(fields.map((f) => `${f}\0`).join(''));
  return Buffer.concat([Buffer.from(`${body.length}\n`), body]);
}

function envFields(env: NodeJS.ProcessEnv): string[] {
  const kv = Object.entries(env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  return [String(kv.length), ...kv];
}

function encodeLaunch(id: string, opts: SpawnSupervisorOptions): Buffer {
  const argv = [String(opts.argv.length), ...opts.argv];
  return encode(['L', id, path.resolve(opts.dir), opts.cwd, ...argv, ...envFields(opts.env)]);
}

/** The runner's guard kills the group at whole seconds, never before the deadline; this server times it exactly. */
function encodeCheck(id: string, req: CheckRequest): Buffer {
  const secs = String(Math.max(1, Math.ceil(req.timeoutMs / 1000)));
  const argv = [String(req.argv.length), ...req.argv];
  return encode(['C', id, req.cwd, secs, req.output ?? '', ...argv, ...envFields(req.env)]);
}

/**
 * A check sent to the runner: settled once, by its end, a kill before it was sent, the fallback's end,
 * or (a CheckStopped) this client closing under it.
 */
interface CheckWaiter {
  req: CheckRequest;
  settle: (rc: number | null | CheckStopped) => void;
  settled: boolean;
  /** Set once it was handed to the fallback (the runner could not be used): kills go there. */
  fallback?: RunningCheck;
}

/** A request waiting for the runner to answer (or, if it cannot be started, for the fallback). */
interface Queued {
  id: string;
  request: Buffer;
  /** Registers the reply's receiver, once the request is written. */
  sent: () => void;
  /** The runner cannot be used: hand the request to the fallback. */
  fallBack: () => void;
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

export class RunnerClient implements Launcher, CheckStarter {
  private socket: net.Socket | null = null;
  private connecting: Promise<net.Socket | null> | null = null;
  private queue: Queued[] = [];
  private pending = new Map<string, Handle>();
  private checks = new Map<string, CheckWaiter>();
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
    private readonly fallback: Launcher & CheckStarter,
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
    this.enqueue({
      id,
      request,
      sent: () => this.pending.set(id, handle),
      fallBack: () => this.startFallback(opts, handle),
    });
    return handle;
  }

  /**
   * Runs a check through the runner: a line on its socket, where a spawn would fork this whole
   * process. The runner kills the check's group at the deadline, when asked, and when this server's
   * connection closes (it stopped or died). If the runner is lost while the check runs, its outcome is
   * unknown: the check is run again by the fallback (checks are read-only probes).
   */
  startCheck(req: CheckRequest): RunningCheck {
    if (req.argv.length === 0 || req.argv[0] === '') throw new Error('check: empty argv');
    if (this.closed || (!this.socket && Date.now() < this.retryAt)) return this.fallback.startCheck(req);
    const id = `${this.idPrefix}-${this.nextId++}`;
    const request = encodeCheck(id, req);
    let resolveDone!: (rc: number | null) => void;
    let rejectDone!: (err: CheckStopped) => void;
    const done = new Promise<number | null>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    const w: CheckWaiter = { req, settled: false, settle: () => {} };
    // The runner's guard kills at whole seconds past the deadline; this times it exactly.
    const timer = setTimeout(() => kill(), req.timeoutMs);
    w.settle = (rc) => {
      if (w.settled) return;
      w.settled = true;
      clearTimeout(timer);
      this.checks.delete(id);
      this.queue = this.queue.filter((q) => q.id !== id);
      if (rc instanceof CheckStopped) rejectDone(rc);
      else resolveDone(rc);
    };
    const kill = () => {
      if (w.settled) return;
      if (w.fallback) return w.fallback.kill();
      if (this.checks.has(id)) this.socket?.write(encode(['K', id]));
      else w.settle(null); // not sent yet: it never runs
    };
    this.enqueue({
      id,
      request,
      sent: () => this.checks.set(id, w),
      fallBack: () => this.checkFallback(w),
    });
    return { done, kill };
  }

  /** Runs a check the runner could not (or can no longer) run: spawned by this process. */
  private checkFallback(w: CheckWaiter): void {
    if (w.settled) return;
    // This server is stopping (the runner killed the check as its connection closed): no outcome.
    if (this.closed) return w.settle(new CheckStopped());
    try {
      w.fallback = this.fallback.startCheck(w.req);
      void w.fallback.done.then((rc) => w.settle(rc));
    } catch {
      w.settle(null);
    }
  }

  private enqueue(q: Queued): void {
    if (this.socket) {
      q.sent();
      this.socket.write(q.request);
    } else {
      this.queue.push(q);
      void this.connect();
    }
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
    for (const q of this.queue.splice(0)) q.fallBack();
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
        for (const q of this.queue.splice(0)) q.fallBack();
        return null;
      }
      if (this.failures > 0) this.log('the perl runner answers again; attempts are started by it');
      this.failures = 0;
      this.retryAt = 0;
      this.attach(socket);
      for (const q of this.queue.splice(0)) {
        q.sent();
        socket.write(q.request);
      }
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
      // A check's outcome died with the connection (the runner killed it, or the runner is gone).
      const checks = [...this.checks.values()];
      this.checks.clear();
      for (const w of checks) this.checkFallback(w);
    });
    socket.unref();
  }

  private reply(line: string): void {
    this.progressAt = Date.now();
    const [op, id, ...rest] = line.split(' ');
    const check = this.checks.get(id);
    if (check) {
      if (op === 'X') check.settle(rest[0] === '-' ? null : Number(rest[0]));
      else if (op === 'F') {
        this.checks.delete(id);
        this.checkFallback(check);
      }
      return;
    }
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
