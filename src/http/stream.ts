// The event stream of SPEC §3: `text/event-stream` fed from the events table.
//
// The table is the truth. Each open stream keeps the seq it has covered; the shared reader in
// fanout.ts replays history to it page by page, then feeds it from one read per commit (woken by
// api.onEvents, which on Postgres also carries other instances' commits through LISTEN/NOTIFY, and by a
// poll every second), so a missed wake, a commit during replay or another
// instance writing to the same database can neither open a gap nor send an event twice. A filtered
// stream's cursor moves past events it skipped, and an `id:` line tells the client so.
//
// Hand-written on the raw response (reply.hijack) rather than @fastify/sse: that plugin writes its
// headers lazily on the first send, names its comment `: heartbeat`, writes it without regard to
// back-pressure, answers 406 on some Accept headers and knows nothing of shutdown; each of those would
// have to be worked around to meet SPEC §3.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { LifelineApi } from '../lifecycle/api.ts';
import type { EventType } from '../domain/types.ts';
import { Admission } from './admission.ts';
import { EventHub, sseFrame, wants, type Batch, type FanoutSubscriber } from './fanout.ts';
import { eventTypesQuery } from './routes/events.ts';
import { COMMON_READ_PROBLEMS, problems, queryInt, RefParams } from './schemas.ts';

export interface StreamRoutesOptions {
  api: LifelineApi & {
    deploymentIdFor(ref: string): Promise<string>;
    stackIdFor(ref: string): Promise<string>;
  };
  /** Interval of `: keepalive` comments; SPEC §3 asks for at least one every 15 s. */
  keepaliveMs?: number;
  /** Safety-net poll of the table, in case a wake is missed or another process writes. */
  pollMs?: number;
  /** Events read from the table per query. */
  batchSize?: number;
  /** `retry:` sent at the start so that EventSource clients reconnect quickly; 0 sends none. */
  retryMs?: number;
  /** How long shutdown waits for a stream's last bytes before it destroys the socket. */
  closeGraceMs?: number;
  /** Replay pages read at once across all streams (the rest queue, in order, a page per turn). */
  replayConcurrency?: number;
  /** Arriving streams let through per turn of the event loop (the rest queue, in order). */
  admitPerTurn?: number;
}

/** Bytes a live stream may have waiting on its socket before the shared reader stops feeding it. */
const LIVE_SLACK = 128 * 1024;

const DEFAULTS = {
  keepaliveMs: 15_000,
  pollMs: 1_000,
  batchSize: 500,
  retryMs: 1_000,
  closeGraceMs: 1_000,
  replayConcurrency: 2,
  admitPerTurn: 4,
};

// The same query pieces as GET /v1/events (routes/events.ts), so a stream accepts exactly what a page does.
const afterParam = queryInt(0, Number.MAX_SAFE_INTEGER)
  .optional()
  .describe('replay events with seq > after (default 0: everything); Last-Event-ID wins over it');

const globalQuery = z.object({
  after: afterParam,
  deployment: z.string().min(1).max(200).optional().describe('deployment id or name'),
  stack: z.string().min(1).max(200).optional().describe("stack id or name: its own events and its units'"),
  type: eventTypesQuery.optional(),
});

const deploymentQuery = z.object({ after: afterParam, type: eventTypesQuery.optional() });

// Loose: the validated value replaces request.headers, so every other header must survive.
const streamHeaders = z.looseObject({
  'last-event-id': z
    .string()
    .regex(/^([0-9]{1,15})?$/, 'must be the seq of an event (a decimal integer)')
    .optional()
    .describe(
      'seq of the last event received (sent by EventSource on reconnect); takes precedence over `after`',
    ),
});

const streamResponse = {
  200: {
    description:
      'text/event-stream: replay from `after` (or Last-Event-ID), then live. Frames are ' +
      '`id: <seq>`, `event: <type>`, `data: <event JSON>`; `: keepalive` comments at least every 15 s.',
    content: { 'text/event-stream': { schema: z.string() } },
  },
  ...problems(...COMMON_READ_PROBLEMS, 404),
};

interface StreamSpec {
  after: number;
  deploymentId?: string;
  stackId?: string;
  types?: EventType[];
}

export { sseFrame };

/** One open stream: the socket side of a fan-out subscriber (what it wants, what it has sent). */
class EventStream implements FanoutSubscriber {
  cursor: number;
  closed = false;
  readonly deploymentId?: string;
  readonly stackId?: string;
  readonly types?: EventType[];
  /** The last `id:` written; a filtered stream may have covered more (cursor) without an event to send. */
  private sentId: number;
  private timers: NodeJS.Timeout[] = [];
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly req: FastifyRequest,
    private readonly res: ServerResponse<IncomingMessage>,
    private readonly hub: EventHub,
    spec: StreamSpec,
    private readonly opts: Required<Omit<StreamRoutesOptions, 'api'>>,
    private readonly onDone: (s: EventStream) => void,
  ) {
    this.cursor = spec.after;
    this.sentId = spec.after;
    this.deploymentId = spec.deploymentId;
    this.stackId = spec.stackId;
    this.types = spec.types;
  }

  /** Sends the headers at once, then hands the stream to the hub: replay, then live. */
  start(headers: Record<string, string | number | string[]>): void {
    const { res } = this;
    res.on('close', () => this.cleanup());
    res.on('drain', () => this.releaseDrain());
    res.on('error', () => this.cleanup());
    if (res.destroyed || !res.socket || res.socket.destroyed) {
      // The client left while the request waited its turn: its `close` has been and gone.
      this.cleanup();
      return;
    }
    const all: Record<string, string | number | string[]> = {};
    for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
    Object.assign(all, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.writeHead(200, all);
    res.socket?.setNoDelay(true);
    // The headers go out at once, with the retry line in the same write when there is one.
    if (this.opts.retryMs > 0) res.write(`retry: ${this.opts.retryMs}\n\n`);
    else res.flushHeaders();

    const t = setInterval(() => this.keepalive(), this.opts.keepaliveMs);
    t.unref();
    this.timers.push(t);
    this.hub.add(this);
  }

  get congested(): boolean {
    // Some slack beyond the socket's high-water mark: a client a few batches behind on a busy machine
    // stays live rather than costing a replay read of its own.
    return this.res.writableNeedDrain && this.res.writableLength > LIVE_SLACK;
  }

  send(batch: Batch, upTo: number): boolean {
    if (this.closed) return false;
    const { items } = batch;
    let out: string | Buffer | null = null;
    if (items.length > 0 && items[0].event.seq > this.cursor) {
      // The usual case: the whole batch is new to this stream; its frames are shared with every
      // stream of the same filter.
      const mine = batch.framesFor(this);
      if (mine) {
        out = mine.bytes;
        this.sentId = mine.last;
      }
    } else {
      let chunk = '';
      for (const { event, frame } of items) {
        if (event.seq <= this.cursor || !wants(this, event)) continue; // never twice, whatever a batch holds
        chunk += frame;
        this.sentId = event.seq;
      }
      if (chunk !== '') out = chunk;
    }
    if (upTo > this.cursor) this.cursor = upTo;
    if (out === null) return !this.res.writableNeedDrain;
    return this.res.write(out);
  }

  markCursor(): void {
    // An `id:` line alone updates the client's last event id without dispatching an event (WHATWG
    // SSE), so a resumed filtered stream starts past what this one already looked at.
    if (this.closed || this.cursor <= this.sentId) return;
    this.sentId = this.cursor;
    this.res.write(`id: ${this.cursor}\n\n`);
  }

  onDrain(cb: () => void): void {
    if (this.closed) return;
    if (!this.res.writableNeedDrain) {
      cb();
      return;
    }
    this.drainWaiters.push(cb);
  }

  private releaseDrain(): void {
    const ws = this.drainWaiters;
    this.drainWaiters = [];
    if (this.closed) return;
    for (const w of ws) w();
  }

  fail(err: Error): void {
    // The store is gone or failing: end the stream; the client resumes from its Last-Event-ID.
    if (this.closed) return;
    this.req.log.warn({ err: err.message }, 'event stream read failed; closing stream');
    void this.end();
  }

  private keepalive(): void {
    // A client that is not reading already has bytes waiting; a comment on top would only grow the buffer.
    if (this.closed || this.res.writableNeedDrain) return;
    this.res.write(': keepalive\n\n');
  }

  /** Ends the response (shutdown or read failure); resolves once the last bytes are out or the grace passes. */
  end(): Promise<void> {
    const { res } = this;
    this.cleanup();
    if (res.writableFinished || res.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        // The connection was kept alive; nothing else will come on it, so let it go now.
        res.socket?.destroySoon?.();
        resolve();
      };
      const timer = setTimeout(() => {
        res.destroy();
        resolve();
      }, this.opts.closeGraceMs);
      timer.unref();
      res.once('finish', done);
      res.once('close', done);
      if (!res.writableEnded) res.end();
    });
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.remove(this);
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.drainWaiters = [];
    this.onDone(this);
  }
}

export const streamRoutes: FastifyPluginAsync<StreamRoutesOptions> = async (app, options) => {
  const { api } = options;
  const opts = {
    keepaliveMs: options.keepaliveMs ?? DEFAULTS.keepaliveMs,
    pollMs: options.pollMs ?? DEFAULTS.pollMs,
    // listEvents refuses pages above 1000.
    batchSize: Math.min(1000, Math.max(1, options.batchSize ?? DEFAULTS.batchSize)),
    retryMs: options.retryMs ?? DEFAULTS.retryMs,
    closeGraceMs: options.closeGraceMs ?? DEFAULTS.closeGraceMs,
    replayConcurrency: Math.max(1, options.replayConcurrency ?? DEFAULTS.replayConcurrency),
    admitPerTurn: Math.max(1, options.admitPerTurn ?? DEFAULTS.admitPerTurn),
  };
  const hub = new EventHub(api, opts);
  const admission = new Admission(opts.admitPerTurn);
  // Route-level, so after the app's own onRequest hooks (request id, Host check, authentication): a
  // refused request is answered at once; an accepted one waits its turn for everything after.
  const admit = (_req: FastifyRequest, _reply: FastifyReply, done: () => void) => admission.admit(done);
  const open = new Set<EventStream>();
  let closing = false;

  // Zod schemas in this scope whatever compilers the parent uses; validation runs before the handler,
  // so a bad query or Last-Event-ID is a 4xx from the app's error handler and no stream header is sent.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('preClose', async () => {
    closing = true;
    await Promise.all([...open].map((s) => s.end()));
    hub.stop();
  });

  const serve = async (
    request: FastifyRequest,
    reply: FastifyReply,
    query: { after?: number; type?: EventType[] },
    deploymentRef: string | undefined,
    stackRef?: string,
  ): Promise<void> => {
    // Unknown deployment: a 404 problem, before any header of the stream.
    const deploymentId = deploymentRef !== undefined ? await api.deploymentIdFor(deploymentRef) : undefined;
    const stackId = stackRef !== undefined ? await api.stackIdFor(stackRef) : undefined;
    const lastEventId = request.headers['last-event-id'];
    const fromHeader =
      typeof lastEventId === 'string' && lastEventId !== '' ? Number(lastEventId) : undefined;
    const spec: StreamSpec = {
      after: fromHeader ?? query.after ?? 0,
      deploymentId,
      stackId,
      types: query.type,
    };
    // Before any header of the stream: a cursor past the end would otherwise wait in silence.
    await api.checkEventCursor(spec.after, fromHeader !== undefined ? 'Last-Event-ID' : 'after');

    reply.hijack();
    const stream = new EventStream(request, reply.raw, hub, spec, opts, (s) => open.delete(s));
    open.add(stream);
    // Headers other hooks set on the reply (request id and the like) still go out.
    stream.start(reply.getHeaders() as Record<string, string | number | string[]>);
    // Shutdown began while this request was resolving its deployment: end at once; the client reconnects.
    if (closing) void stream.end();
  };

  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get(
    '/v1/events/stream',
    {
      config: { role: 'viewer' },
      onRequest: admit,
      // A HEAD would hijack the socket for a response that has no body and never ends.
      exposeHeadRoute: false,
      schema: {
        operationId: 'streamEvents',
        summary: 'Stream events (SSE)',
        description: 'Replay, then live; `Last-Event-ID` takes precedence over `after`.',
        tags: ['events'],
        querystring: globalQuery,
        headers: streamHeaders,
        response: streamResponse,
      },
    },
    async (request, reply) =>
      serve(request, reply, request.query, request.query.deployment, request.query.stack),
  );

  r.get(
    '/v1/deployments/:ref/events/stream',
    {
      config: { role: 'viewer' },
      onRequest: admit,
      // A HEAD would hijack the socket for a response that has no body and never ends.
      exposeHeadRoute: false,
      schema: {
        operationId: 'streamDeploymentEvents',
        summary: "Stream one deployment's events (SSE)",
        description: 'Replay, then live; `Last-Event-ID` takes precedence over `after`.',
        tags: ['events'],
        params: RefParams,
        querystring: deploymentQuery,
        headers: streamHeaders,
        response: streamResponse,
      },
    },
    async (request, reply) => serve(request, reply, request.query, request.params.ref),
  );
};
