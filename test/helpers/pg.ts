// Throwaway PostgreSQL for tests: a cluster of our own (initdb + pg_ctl as the `postgres` user, in a
// temp dir it owns, on a free port, fsync off), and a fresh database per test data dir on it.
// Nothing here goes through a shell: every command is an argv, and no argument comes from test input.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/** The newest installed server's bin dir (Debian layout), or the dir of an initdb on PATH. */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length > 0) return path.join(root, versions[0], 'bin');
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'initdb'))) return dir;
  }
  throw new Error(
    'PostgreSQL server binaries not found (no /usr/lib/postgresql/<version>/bin/initdb, no initdb on PATH): ' +
      'install the postgresql package, or set LIFELINE_TEST_PG_URL to a server the tests may create databases on',
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A private cluster. Root runs the server binaries as `postgres` (initdb refuses to run as root). */
export class PgCluster {
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  private constructor(
    readonly bin: string,
    dir: string,
    readonly port: number,
  ) {
    this.dir = dir;
    this.dataDir = path.join(dir, 'data');
    this.logFile = path.join(dir, 'server.log');
  }

  /** Superuser URL of the `postgres` database, over TCP on loopback. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async create(): Promise<PgCluster> {
    const bin = postgresBinDir();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifeline-pg-'));
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      const { uid, gid } = await postgresUser();
      fs.chownSync(dir, uid, gid);
    }
    const cluster = new PgCluster(bin, dir, await freePort());
    try {
      await cluster.exec('initdb', [
        '-D',
        cluster.dataDir,
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--no-sync',
        '--no-instructions',
      ]);
      // Test settings: no durability (fsync off), enough connections for parallel files, socket in our dir.
      // No autovacuum: a run leaves hundreds of small databases, and the launcher starts a worker process
      // for each of them every minute (about 2,000 backends a run); no test waits on a vacuum.
      fs.appendFileSync(
        path.join(cluster.dataDir, 'postgresql.conf'),
        [
          `port = ${cluster.port}`,
          `listen_addresses = '127.0.0.1'`,
          `unix_socket_directories = '${dir}'`,
          'fsync = off',
          'synchronous_commit = off',
          'full_page_writes = off',
          'max_connections = 300',
          'shared_buffers = 32MB',
          'autovacuum = off',
          '',
        ].join('\n'),
      );
      await cluster.start();
    } catch (err) {
      await cluster.destroy().catch(() => undefined);
      throw err;
    }
    return cluster;
  }

  private async exec(tool: string, args: string[]): Promise<string> {
    const file = path.join(this.bin, tool);
    const asRoot = process.getuid?.() === 0;
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
    try {
      const { stdout } = await run(cmd, argv, { cwd: this.dir, timeout: 60_000 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      let log = '';
      try {
        log = fs.readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
      } catch {
        // no server log yet
      }
      throw new Error(
        `${tool} failed: ${e.stderr?.trim() || e.message}${log ? `\nserver log:\n${log}` : ''}`,
      );
    }
  }

  async start(): Promise<void> {
    await this.exec('pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', 'start']);
  }

  /** `fast` is what an operator's restart does: every session is terminated (SQLSTATE 57P01). */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.exec('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  async destroy(): Promise<void> {
    if (fs.existsSync(path.join(this.dataDir, 'postmaster.pid'))) {
      await this.stop('immediate').catch(() => undefined);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root but there is no `postgres` user to run the server as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

// ---- databases ----------------------------------------------------------------------------------

/** Quoted identifier; names here are generated, but quote anyway. */
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

export function withDatabase(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs one statement on the server's maintenance database. */
export async function adminQuery(serverUrl: string, text: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 30_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates a database unless it exists; returns its URL. `template` (a database nobody is connected to)
 * is copied instead of the empty template0: the run's migrated template makes a test database without
 * running the migrations again.
 */
export async function ensureDatabase(
  serverUrl: string,
  name: string,
  template = 'template0',
): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl, connectionTimeoutMillis: 30_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      // FILE_COPY (PostgreSQL 15+) copies the template's files; the default (WAL_LOG) writes every block
      // of it to the WAL: about 2.5 times the backend's CPU for a small test database.
      const version = Number((await client.query('SHOW server_version_num')).rows[0].server_version_num);
      const strategy = version >= 150000 ? ' STRATEGY FILE_COPY' : '';
      await client.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)}${strategy}`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return withDatabase(serverUrl, name);
}

/** The run's template database name: the run's prefix, so dropRunDatabases drops it too. */
export function templateName(runId: string): string {
  return `lt_${runId}_template`;
}

/** A database name unique to this test run and this key (a data dir): the same key, the same database. */
export function databaseName(runId: string, key: string): string {
  return `lt_${runId}_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export function newRunId(): string {
  return randomBytes(4).toString('hex');
}

/** Drops the databases this run created (only needed on a server we did not start ourselves). */
export async function dropRunDatabases(serverUrl: string, runId: string): Promise<void> {
  const rows = await adminQuery(serverUrl, `SELECT datname FROM pg_database WHERE datname LIKE $1`, [
    `lt\\_${runId}\\_%`,
  ]);
  for (const r of rows.rows as { datname: string }[]) {
    await adminQuery(serverUrl, `DROP DATABASE IF EXISTS ${ident(r.datname)} WITH (FORCE)`);
  }
}
