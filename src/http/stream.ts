// The event stream of SPEC §3: `text/event-stream` fed from the events table.
//
// The table is the truth. Each open stream keeps the seq of the last event it sent and reads the table
// from there; the in-process notifier (api.onEvents) only wakes it, and a poll every second wakes it as
// well, so a missed wake, a commit during replay or another instance writing to the same database can
// neither open a gap nor send an event twice.
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
import type { EventType, LifelineEvent } from '../domain/types.ts';
import { eventTypesQuery } from './routes/events.ts';
import { COMMON_READ_PROBLEMS, problems, queryInt, RefParams } from './schemas.ts';

export interface StreamRoutesOptions {
  api: LifelineApi & { deploymentIdFor(ref: string): Promise<string> };
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
}

const DEFAULTS = { keepaliveMs: 15_000, pollMs: 1_000, batchSize: 500, retryMs: 1_000, closeGraceMs: 1_000 };

/** Frames are gathered up to this size before a write, so a replay is not one syscall per event. */
const WRITE_CHUNK = 64 * 1024;

// The same query pieces as GET /v1/events (routes/events.ts), so a stream accepts exactly what a page does.
const afterParam = queryInt(0, Number.MAX_SAFE_INTEGER)
  .optional()
  .describe('replay events with seq > after (default 0: everything); Last-Event-ID wins over it');

const globalQuery = z.object({
  after: afterParam,
  deployment: z.string().min(1).max(200).optional().describe('deployment id or name'),
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
  types?: EventType[];
}

/** Formats one event as an SSE frame; JSON.stringify escapes CR and LF, so `data:` is one line. */
export function sseFrame(event: LifelineEvent): string {
  return `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

class EventStream {
  private cursor: number;
  private closed = false;
  private pumping = false;
  private again = false;
  private unsubscribe: (() => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private drainWaiter: (() => void) | null = null;

  constructor(
    private readonly req: FastifyRequest,
    private readonly res: ServerResponse<IncomingMessage>,
    private readonly api: StreamRoutesOptions['api'],
    private readonly spec: StreamSpec,
    private readonly opts: Required<Omit<StreamRoutesOptions, 'api'>>,
    private readonly onDone: (s: EventStream) => void,
  ) {
    this.cursor = spec.after;
  }

  /** Sends the headers at once, then replays and follows the table. */
  start(headers: Record<string, string | number | string[]>): void {
    const { res } = this;
    res.on('close', () => this.cleanup());
    res.on('drain', () => this.releaseDrain());
    res.on('error', () => this.cleanup());
    const all: Record<string, string | number | string[]> = {};
    for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
    Object.assign(all, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.writeHead(200, all);
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    if (this.opts.retryMs > 0) res.write(`retry: ${this.opts.retryMs}\n\n`);

    this.unsubscribe = this.api.onEvents(() => this.wake());
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.opts.keepaliveMs, () => this.keepalive());
    every(this.opts.pollMs, () => this.wake());
    this.wake();
  }

  /** Reads the table from the last sent seq; wakes that arrive while reading cause one more pass. */
  wake(): void {
    if (this.closed) return;
    this.again = true;
    if (this.pumping) return;
    this.pumping = true;
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      while (this.again && !this.closed) {
        this.again = false;
        await this.sendNew();
      }
    } catch (err) {
      // The store is gone or failing: end the stream; the client resumes from its Last-Event-ID.
      if (!this.closed) {
        this.req.log.warn({ err: (err as Error).message }, 'event stream read failed; closing stream');
        void this.end();
      }
    } finally {
      // In the same synchronous step as the last `again` check: a wake can never fall between the two.
      this.pumping = false;
    }
  }

  /** Sends every event after the cursor, page by page, waiting for the client when its buffer is full. */
  private async sendNew(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const page = await this.api.listEvents({
        after: this.cursor,
        limit: this.opts.batchSize,
        deployment: this.spec.deploymentId,
        types: this.spec.types,
      });
      if (this.closed) return;
      let chunk = '';
      for (const event of page.items) {
        if (event.seq <= this.cursor) continue; // never twice, whatever a page holds
        chunk += sseFrame(event);
        this.cursor = event.seq;
        if (chunk.length >= WRITE_CHUNK) {
          await this.write(chunk);
          chunk = '';
          if (this.closed) return;
        }
      }
      if (chunk) await this.write(chunk);
      if (page.items.length < this.opts.batchSize) return;
    }
  }

  /** Writes and, when the socket buffer is full, waits for 'drain' (or close) before going on. */
  private write(data: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.res.write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiter = resolve;
    });
  }

  private releaseDrain(): void {
    const w = this.drainWaiter;
    this.drainWaiter = null;
    w?.();
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
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.releaseDrain();
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
  };
  const open = new Set<EventStream>();
  let closing = false;

  // Zod schemas in this scope whatever compilers the parent uses; validation runs before the handler,
  // so a bad query or Last-Event-ID is a 4xx from the app's error handler and no stream header is sent.
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.addHook('preClose', async () => {
    closing = true;
    await Promise.all([...open].map((s) => s.end()));
  });

  const serve = async (
    request: FastifyRequest,
    reply: FastifyReply,
    query: { after?: number; type?: EventType[] },
    deploymentRef: string | undefined,
  ): Promise<void> => {
    // Unknown deployment: a 404 problem, before any header of the stream.
    const deploymentId = deploymentRef !== undefined ? await api.deploymentIdFor(deploymentRef) : undefined;
    const lastEventId = request.headers['last-event-id'];
    const fromHeader =
      typeof lastEventId === 'string' && lastEventId !== '' ? Number(lastEventId) : undefined;
    const spec: StreamSpec = { after: fromHeader ?? query.after ?? 0, deploymentId, types: query.type };

    reply.hijack();
    const stream = new EventStream(request, reply.raw, api, spec, opts, (s) => open.delete(s));
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
    async (request, reply) => serve(request, reply, request.query, request.query.deployment),
  );

  r.get(
    '/v1/deployments/:ref/events/stream',
    {
      config: { role: 'viewer' },
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
