// Shared reading of the events table for every open event stream (SPEC §3), so that a stream costs
// O(new events) and live delivery costs one read per commit, whatever the number of subscribers.
//
// A subscriber is either live (caught up: it takes its events from the hub's one read of each new
// batch, filtered in memory by deployment and type) or replaying (behind: it reads its own pages, one
// page per turn, from a queue served by a few readers at a time with a yield between pages, so that
// hundreds of clients replaying history share the process with every other request). A live
// subscriber whose socket buffer is full leaves the live set and, once drained, replays from its
// cursor: a slow client never holds up the others and never holds more than a batch in memory.
//
// The table stays the truth: the hub reads from the highest seq it has delivered, woken by the
// in-process notifier (which also carries other instances' commits on Postgres) and by a poll (a missed
// wake). While the store is unavailable, streams stay open (their keepalives keep flowing): reads that
// fail leave every cursor where it was and are tried again, so delivery resumes with no gap or repeat.
import type { EventType, LifelineEvent } from '../domain/types.ts';
import { storeFault, type LifelineApi } from '../lifecycle/api.ts';

/** The database is unreachable for now (it will come back), as opposed to a bug or a closed store. */
const isOutage = (err: unknown) => storeFault(err) === 'unavailable';

export interface Framed {
  event: LifelineEvent;
  /** The SSE frame, built once per event however many subscribers send it. */
  frame: string;
}

/** Formats one event as an SSE frame; JSON.stringify escapes CR and LF, so `data:` is one line. */
export function sseFrame(event: LifelineEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

type Filter = Pick<FanoutSubscriber, 'deploymentId' | 'stackId' | 'types'>;

/**
 * Events read once and sent to many: the frames a filter wants are joined into one Buffer, built on
 * first use and written as is to every socket with that filter (no per-subscriber string work).
 */
export class Batch {
  private readonly joined = new Map<string, { bytes: Buffer; last: number } | null>();

  /** `matched`: the items were read with the subscribers' own filter (a replay page), so all match. */
  constructor(
    readonly items: Framed[],
    private readonly matched: boolean,
  ) {}

  framesFor(sub: Filter): { bytes: Buffer; last: number } | null {
    const key = this.matched
      ? ''
      : `${sub.deploymentId ?? ''}|${sub.stackId ?? ''}|${sub.types?.join(',') ?? ''}`;
    let out = this.joined.get(key);
    if (out === undefined) {
      const mine = this.matched ? this.items : this.items.filter((f) => wants(sub, f.event));
      out =
        mine.length === 0
          ? null
          : { bytes: Buffer.from(mine.map((f) => f.frame).join('')), last: mine[mine.length - 1].event.seq };
      this.joined.set(key, out);
    }
    return out;
  }
}

export interface FanoutSubscriber {
  /** Highest seq this subscriber has covered: every event it wants up to here has been written. */
  cursor: number;
  readonly deploymentId?: string;
  /** Events of a stack and its units (SPEC §12.5). */
  readonly stackId?: string;
  readonly types?: EventType[];
  readonly closed: boolean;
  /** Writes the events it wants after its cursor, moves the cursor to `upTo`; false once its buffer is full. */
  send(batch: Batch, upTo: number): boolean;
  /** Whether the client is so far behind that the hub should stop feeding it (it replays once drained). */
  readonly congested: boolean;
  /** Calls back once the socket buffer has drained (or the stream closed). */
  onDrain(cb: () => void): void;
  /** Tells the client how far the cursor moved past its last event (a filtered stream skipped some). */
  markCursor(): void;
  fail(err: Error): void;
}

export interface FanoutOptions {
  /** Events per read, for the hub and for each replay page (listEvents caps it at 1000). */
  batchSize: number;
  /** Safety-net poll of the table. */
  pollMs: number;
  /** Replay pages read at once; the rest wait their turn in order. */
  replayConcurrency: number;
}

type Api = Pick<LifelineApi, 'listEvents' | 'onEvents'>;

interface FramedPage {
  items: Batch;
  next_after: number;
}

/** Full replay pages kept for other clients replaying the same history. */
const PAGE_CACHE = 32;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class EventHub {
  /** Highest seq read and delivered to the live set; null until a subscriber goes live. */
  private head: number | null = null;
  /** Highest seq known to exist (read, or announced by a commit): head never goes past it. */
  private known = 0;
  /** Bumped when head is reset, so that a read in flight from the old head is dropped. */
  private generation = 0;
  private readonly subs = new Set<FanoutSubscriber>();
  private readonly live = new Set<FanoutSubscriber>();
  private readonly queue: FanoutSubscriber[] = [];
  private readonly queued = new Set<FanoutSubscriber>();
  private readonly pages = new Map<string, Promise<FramedPage>>();
  private replaying = 0;
  private turn: NodeJS.Immediate | null = null;
  private pumping = false;
  private again = false;
  /** A wake that named no seq (the poll, a reconnect) or a reset head: the next pass must read. */
  private blind = false;
  private unsubscribe: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly api: Api,
    private readonly opts: FanoutOptions,
  ) {}

  /** Delay before a read that met an outage is tried again. */
  private get retryMs(): number {
    return Math.min(this.opts.pollMs, 1_000);
  }

  /** Number of subscribers caught up and fed by the shared read (for tests and the bench). */
  get liveCount(): number {
    return this.live.size;
  }

  add(sub: FanoutSubscriber): void {
    this.subs.add(sub);
    if (this.subs.size === 1) {
      this.unsubscribe = this.api.onEvents((lastSeq) => this.wake(lastSeq));
      this.timer = setInterval(() => this.tick(), this.opts.pollMs);
      this.timer.unref();
    }
    this.enqueue(sub);
  }

  remove(sub: FanoutSubscriber): void {
    this.subs.delete(sub);
    this.live.delete(sub);
    this.queued.delete(sub); // its queue slot is skipped when reached
    if (this.subs.size === 0) this.stop();
  }

  stop(): void {
    if (this.turn !== null) clearImmediate(this.turn);
    this.turn = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    this.wake();
    for (const sub of this.live) if (!sub.congested) sub.markCursor();
  }

  // ---- replay: one page per turn, a few at a time, in arrival order ----

  private enqueue(sub: FanoutSubscriber): void {
    if (sub.closed || this.queued.has(sub)) return;
    this.queued.add(sub);
    this.queue.push(sub);
    this.schedule();
  }

  /**
   * Pages are only ever started from a turn of their own, never from the caller's: an arriving
   * stream, a drained socket or a finished page only books a turn. On SQLite a read completes in
   * microtasks, so starting pages from a drain or an arrival chained them into one long task (each
   * write's drain starting the next page) that held the loop for the whole storm.
   */
  private schedule(): void {
    if (this.turn !== null || this.queue.length === 0) return;
    this.turn = setImmediate(() => {
      this.turn = null;
      this.serveQueue();
    });
  }

  private serveQueue(): void {
    while (this.replaying < this.opts.replayConcurrency && this.queue.length > 0) {
      const sub = this.queue.shift()!;
      if (!this.queued.delete(sub) || sub.closed) continue;
      this.replaying++;
      void this.replayPage(sub).finally(() => {
        this.replaying--;
        // The next page waits for the loop to turn: requests that arrived meanwhile go first.
        this.schedule();
      });
    }
  }

  private async replayPage(sub: FanoutSubscriber): Promise<void> {
    let page: FramedPage;
    const after = sub.cursor;
    if (this.head !== null && this.live.size > 0 && after >= this.head) {
      // Already where the shared read is (the last of many clients replaying the same history): the
      // hub's next read carries on from there, so no page of its own to read.
      sub.markCursor();
      this.join(sub);
      return;
    }
    try {
      page = await this.readPage(after, sub.deploymentId, sub.types, sub.stackId);
    } catch (err) {
      if (!isOutage(err)) {
        sub.fail(err as Error);
        return;
      }
      // An outage: the same page again a little later (its cursor has not moved).
      const t = setTimeout(() => this.enqueue(sub), this.retryMs);
      t.unref();
      return;
    }
    if (sub.closed) return;
    const items = page.items.items;
    if (items.length > 0) this.learn(items[items.length - 1].event.seq);
    // A filtered page's next_after is the table's head when it moved; unmoved, it proves nothing.
    if (page.next_after > after) this.learn(page.next_after);
    const room = sub.send(page.items, page.next_after);
    if (items.length >= this.opts.batchSize) {
      // More history: back of the queue, once the client has taken this page.
      if (room) this.enqueue(sub);
      else sub.onDrain(() => this.enqueue(sub));
      return;
    }
    sub.markCursor();
    this.join(sub);
  }

  /**
   * One page of history, shared: clients replaying the same history (tabs reconnecting together after
   * a restart) ask for the same pages, so reads in flight are joined and full pages are kept a while.
   * A full page never changes (it ends at its last event, and seqs below the head are all committed);
   * a short one ends at the head and is read afresh.
   */
  private readPage(
    after: number,
    deployment?: string,
    types?: EventType[],
    stack?: string,
  ): Promise<FramedPage> {
    const key = `${after}|${deployment ?? ''}|${stack ?? ''}|${types?.join(',') ?? ''}`;
    const hit = this.pages.get(key);
    if (hit) {
      this.pages.delete(key); // most recently used goes last
      this.pages.set(key, hit);
      return hit;
    }
    const read = this.api
      .listEvents({ after, limit: this.opts.batchSize, deployment, stack, types, noPrunedMark: true })
      .then((page) => ({
        items: new Batch(
          page.items.map((event) => ({ event, frame: sseFrame(event) })),
          true,
        ),
        next_after: page.next_after,
      }));
    this.pages.set(key, read);
    const forget = () => {
      if (this.pages.get(key) === read) this.pages.delete(key);
    };
    read.then((page) => {
      if (page.items.items.length < this.opts.batchSize) forget();
    }, forget);
    while (this.pages.size > PAGE_CACHE) this.pages.delete(this.pages.keys().next().value!);
    return read;
  }

  /** A subscriber whose last page was short is at the table's head as it read it: feed it live. */
  private join(sub: FanoutSubscriber): void {
    if (sub.closed) return;
    if (this.live.size === 0 || this.head === null) {
      // Nobody live: the shared read restarts from this subscriber's cursor, or from the highest seq
      // known to exist when the cursor is beyond it (a Last-Event-ID from elsewhere must not make the
      // hub skip events that later subscribers need).
      this.head = Math.min(sub.cursor, this.known);
      this.generation++;
    } else if (sub.cursor < this.head) {
      // The hub delivered past it while it read: one more page closes the gap.
      this.enqueue(sub);
      return;
    }
    // cursor >= head: the next batch starts at head; events up to the cursor are skipped in send().
    this.live.add(sub);
    // Commits wake the hub; read now only if one is known to lie beyond what the hub has read.
    if (this.known > this.head) this.wake();
  }

  // ---- live: one read per wake, delivered to every live subscriber ----

  private learn(seq: number): void {
    if (seq > this.known) this.known = seq;
  }

  wake(lastSeq?: number): void {
    if (lastSeq !== undefined) this.learn(lastSeq);
    if (this.live.size === 0) return;
    if (lastSeq !== undefined && this.head !== null && lastSeq <= this.head) return;
    if (lastSeq === undefined) this.blind = true;
    this.again = true;
    if (this.pumping) return;
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      while (this.again && this.live.size > 0) {
        this.again = false;
        // Wakes that came during the last read for seqs it has read since (on PostgreSQL a commit's
        // NOTIFY and its local wake-up both come): nothing to read for them.
        if (!this.blind && this.head !== null && this.known <= this.head) continue;
        this.blind = false;
        await this.readNew();
      }
    } catch (err) {
      if (isOutage(err)) {
        // An outage: head has not moved; the next wake (the poll, or the listener reconnecting once the
        // database is back) reads again from it, and the live set waits with its keepalives.
        const t = setTimeout(() => this.wake(), this.retryMs);
        t.unref();
      } else {
        // A failure that is not an outage: end the live streams; their clients resume from Last-Event-ID.
        for (const sub of [...this.live]) sub.fail(err as Error);
        this.live.clear();
      }
    } finally {
      // In the same synchronous step as the last `again` check: a wake can never fall between the two.
      this.pumping = false;
    }
  }

  private async readNew(): Promise<void> {
    for (;;) {
      if (this.live.size === 0 || this.head === null) return;
      const generation = this.generation;
      const page = await this.api.listEvents({
        after: this.head,
        limit: this.opts.batchSize,
        noPrunedMark: true,
      });
      if (generation !== this.generation) {
        this.again = true; // head was reset while reading: read again from the new one
        this.blind = true;
        return;
      }
      if (page.items.length === 0) return;
      this.head = page.next_after;
      this.learn(this.head);
      const batch = new Batch(
        page.items.map((event) => ({ event, frame: sseFrame(event) })),
        false,
      );
      for (const sub of this.live) {
        if (sub.closed) {
          this.live.delete(sub);
        } else if (sub.congested) {
          // Its client has not taken the last batch: it leaves the live set and replays once drained.
          this.live.delete(sub);
          sub.onDrain(() => this.enqueue(sub));
        } else {
          sub.send(batch, page.next_after);
        }
      }
      if (page.items.length < this.opts.batchSize) return;
      await yieldToLoop();
    }
  }
}

/** Whether a subscriber with these filters wants the event (the in-memory form of listEvents' filter). */
export function wants(
  sub: Pick<FanoutSubscriber, 'deploymentId' | 'stackId' | 'types'>,
  e: LifelineEvent,
): boolean {
  if (sub.deploymentId !== undefined && e.deployment_id !== sub.deploymentId) return false;
  if (sub.stackId !== undefined && e.stack_id !== sub.stackId) return false;
  if (sub.types !== undefined && sub.types.length > 0 && !sub.types.includes(e.type)) return false;
  return true;
}
