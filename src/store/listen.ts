// Cross-instance wake-ups on Postgres: every commit that appends events sends
// `NOTIFY lifeline_events, '<last seq>'` (queued by the seq reservation, store/events.ts), and each
// instance keeps one dedicated connection LISTENing on that channel, so a stream on instance A reads an
// event committed through instance B as soon as it commits rather than at the next safety poll.
//
// The events table stays the truth: a notification only says "read now". One lost (the connection
// dropped, the database restarted) costs a delay up to the readers' poll; after every (re)connect the
// listener wakes all readers once, since notifications sent while it was away are gone.
import type pg from 'pg';
import { pgModule } from './pg.ts';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from './schema.ts';

export const EVENTS_CHANNEL = 'lifeline_events';
/** A change to one attempt that writes no event (a cancel request): its owner should look at it now. */
export const ATTEMPTS_CHANNEL = 'lifeline_attempts';
/** A concurrency slot was freed (payload: its key, '' for any): gate keepers look at its queue now. */
export const GATES_CHANNEL = 'lifeline_gates';

/** Asks the attempt's owner, wherever it runs, to look at it once this transaction commits. */
export async function notifyAttempt(
  trx: Transaction<Database> | Kysely<Database>,
  id: string,
): Promise<void> {
  await sql`SELECT pg_notify(${ATTEMPTS_CHANNEL}, ${id})`.execute(trx);
}

export interface ListenerOptions {
  /** A commit was announced (its last seq), or undefined: read, something may have been missed. */
  onWake: (lastSeq?: number) => void;
  /** An attempt was changed without an event (its id): its owner, if listening here, looks now. */
  onAttempt?: (id: string) => void;
  /** A slot of this key was freed ('' = some key): the gate keeper opens what waits on it. */
  onGate?: (key: string) => void;
  /** The connection failed or could not be opened (an outage, not a crash). */
  onError?: (err: Error) => void;
  /** Told when the connection is (re)established. */
  onConnect?: () => void;
  connectTimeoutMs?: number;
  /** Backoff bounds between reconnects. */
  minDelayMs?: number;
  maxDelayMs?: number;
}

/** One reconnecting LISTEN connection of its own (not from the pool: a pooled client would be recycled). */
export class EventListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;

  constructor(
    private readonly url: string,
    private readonly opts: ListenerOptions,
  ) {}

  /** Connects in the background; resolves after the first attempt, whether it succeeded or not. */
  start(): Promise<void> {
    return this.connect();
  }

  get connected(): boolean {
    return this.client !== null;
  }

  private connect(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.connecting) return this.connecting;
    this.connecting = this.open().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async open(): Promise<void> {
    const client = new (pgModule().Client)({
      connectionString: this.url,
      connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 5_000,
      keepAlive: true,
      application_name: 'lifeline-listen',
    });
    let lost = false;
    const drop = (err?: Error) => {
      // 'error' and 'end' both come when a connection dies; reconnect once.
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = null;
      if (err) this.opts.onError?.(err);
      client.end().catch(() => undefined);
      this.retry();
    };
    // An unheard 'error' event would end the process: a database restart sends 57P01 to this session.
    client.on('error', (err) => drop(err));
    client.on('end', () => drop());
    client.on('notification', (msg) => {
      if (msg.channel === ATTEMPTS_CHANNEL && msg.payload) this.opts.onAttempt?.(msg.payload);
      if (msg.channel === GATES_CHANNEL) this.opts.onGate?.(msg.payload ?? '');
      if (msg.channel !== EVENTS_CHANNEL) return;
      const seq = Number(msg.payload);
      this.opts.onWake(Number.isSafeInteger(seq) && seq > 0 ? seq : undefined);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}; LISTEN ${ATTEMPTS_CHANNEL}; LISTEN ${GATES_CHANNEL}`);
    } catch (err) {
      drop(err as Error);
      return;
    }
    if (this.stopped || lost) {
      if (!lost) {
        lost = true;
        await client.end().catch(() => undefined);
      }
      return;
    }
    this.client = client;
    this.failures = 0;
    this.opts.onConnect?.();
    // Commits made while no one listened were never announced here: read once.
    this.opts.onWake(undefined);
  }

  private retry(): void {
    if (this.stopped || this.timer) return;
    const min = this.opts.minDelayMs ?? 100;
    const max = this.opts.maxDelayMs ?? 5_000;
    const delay = Math.min(max, min * 2 ** this.failures) * (0.5 + Math.random() / 2);
    this.failures++;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.connecting?.catch(() => undefined);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}
