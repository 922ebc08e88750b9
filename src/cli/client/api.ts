// The CLI's only way to the server: the public HTTP API (SPEC §6), over fetch.
//
// Every failure becomes one of three errors that the command wrapper (action.ts) turns into a message and
// exit code 2: ApiError (the server answered with a problem), ConnectionError (it could not be reached)
// and UsageError (the command line or environment is wrong).
import type { FieldError } from '../../domain/errors.ts';
import type { FreezeInfo, NewFreeze, PlanInfo } from '../../lifecycle/api.ts';
import type { Attempt, Deployment, EventType, LifelineEvent, Page, Transition } from '../../domain/types.ts';
import type { Phase } from '../../domain/phases.ts';
import type { Run } from '../../domain/stack-run.ts';
import type { Stack } from '../../domain/stack-types.ts';

export const DEFAULT_URL = 'http://127.0.0.1:7400';

/** A request timeout for plain (non-stream) calls. */
const REQUEST_TIMEOUT_MS = 60_000;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type { FieldError };

/** The server answered with an error: an RFC 9457 problem, or something that is not one (a proxy's 502). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly errors: FieldError[] = [],
    readonly traceId: string | null = null,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'ApiError';
  }
}

/** The server could not be reached at all (refused, reset, DNS, timeout). */
export class ConnectionError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the Lifeline server at ${url}: ${reason}`);
    this.name = 'ConnectionError';
  }
}

// The API's shapes are the domain's: one definition for server and client.
export type { Page, PlanInfo as Plan, Transition };

export interface EventPage {
  items: LifelineEvent[];
  next_after: number;
}

export interface ClientOptions {
  url?: string;
  token?: string;
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | boolean | string[] | undefined>;

/** Reads LIFELINE_URL and LIFELINE_TOKEN. */
export function clientFromEnv(env: NodeJS.ProcessEnv = process.env): ApiClient {
  return new ApiClient({ url: env.LIFELINE_URL || DEFAULT_URL, token: env.LIFELINE_TOKEN || undefined });
}

/** Why a fetch failed, in words: "connection refused", "host not found", … */
export function describeNetworkError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'the request timed out';
  const code = e?.cause?.code ?? (err as { code?: string })?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is `lifeline serve` running there? set LIFELINE_URL to point elsewhere)';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'the connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'the host is unreachable';
    default:
      return e?.cause?.message ?? e?.message ?? String(err);
  }
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions = {}) {
    const raw = opts.url ?? DEFAULT_URL;
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new UsageError(`LIFELINE_URL is not a URL: ${raw}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new UsageError(`LIFELINE_URL must be an http:// or https:// URL: ${raw}`);
    }
    this.baseUrl = u.toString().replace(/\/+$/, '');
    this.token = opts.token;
    this.fetchImpl = opts.fetch ?? fetch;
  }

  url(path: string, query: Query = {}): string {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined) continue;
      for (const item of Array.isArray(v) ? v : [v]) qs.append(k, String(item));
    }
    const s = qs.toString();
    return `${this.baseUrl}${path}${s ? `?${s}` : ''}`;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json, application/problem+json', ...extra };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  /** One fetch; network failures become ConnectionError. */
  async raw(
    method: string,
    path: string,
    opts: { query?: Query; body?: unknown; headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const headers = this.headers(opts.headers);
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    try {
      return await this.fetchImpl(this.url(path, opts.query), {
        method,
        headers,
        body,
        signal: opts.signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new ConnectionError(this.baseUrl, describeNetworkError(err));
    }
  }

  /** A request whose success is JSON (or empty, for 204). Non-2xx answers throw ApiError. */
  async json<T>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
    const res = await this.raw(method, path, opts);
    if (!res.ok) throw await problemFrom(res);
    if (res.status === 204) return undefined as T;
    const text = await readText(res, this.baseUrl);
    try {
      return (text === '' ? undefined : JSON.parse(text)) as T;
    } catch {
      throw new ApiError(res.status, 'BAD_RESPONSE', `the server sent something that is not JSON`);
    }
  }

  // ---- typed calls (SPEC §6) ----

  health(): Promise<{ status: string; version: string; instance: string }> {
    return this.json('GET', '/v1/health');
  }

  async plans(): Promise<PlanInfo[]> {
    return (await this.json<{ items: PlanInfo[] }>('GET', '/v1/plans')).items;
  }

  /** SPEC §12.5: the spec as parsed from its file. */
  createStack(spec: unknown): Promise<Stack> {
    return this.json('POST', '/v1/stacks', { body: spec });
  }

  getStack(name: string): Promise<Stack> {
    return this.json('GET', `/v1/stacks/${encodeURIComponent(name)}`);
  }

  /** SPEC §12.5: a deploy run (202). */
  deployStack(name: string, body: { units?: string[]; all?: boolean; force?: boolean }): Promise<Run> {
    return this.json('POST', `/v1/stacks/${enc(name)}/deploy`, { body });
  }

  teardownStack(name: string, body: { confirm: string; force?: boolean }): Promise<Run> {
    return this.json('POST', `/v1/stacks/${enc(name)}/teardown`, { body });
  }

  cancelStackRun(name: string): Promise<Run> {
    return this.json('POST', `/v1/stacks/${enc(name)}/cancel`, { body: {} });
  }

  getRun(id: string): Promise<Run> {
    return this.json('GET', `/v1/runs/${enc(id)}`);
  }

  /** Every run of a stack, newest first. */
  async allRuns(name: string): Promise<Run[]> {
    const out: Run[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.json<Page<Run>>('GET', `/v1/stacks/${enc(name)}/runs`, {
        query: { limit: 500, cursor },
      });
      out.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  /** Every page, newest first. */
  async allStacks(): Promise<Stack[]> {
    const out: Stack[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.json<Page<Stack>>('GET', '/v1/stacks', { query: { limit: 500, cursor } });
      out.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  createDeployment(body: {
    name: string;
    plan: string;
    params?: Record<string, unknown>;
    labels?: Record<string, string>;
  }): Promise<Deployment> {
    return this.json('POST', '/v1/deployments', { body });
  }

  listDeployments(query: {
    state?: string;
    plan?: string;
    label?: string[];
    drift?: 'true';
    limit?: number;
    cursor?: string;
  }): Promise<Page<Deployment>> {
    return this.json('GET', '/v1/deployments', { query });
  }

  /** Every page, newest first. */
  async allDeployments(query: {
    state?: string;
    plan?: string;
    label?: string[];
    drift?: 'true';
  }): Promise<Deployment[]> {
    const out: Deployment[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listDeployments({ ...query, limit: 500, cursor });
      out.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  getDeployment(ref: string): Promise<Deployment> {
    return this.json('GET', `/v1/deployments/${enc(ref)}`);
  }

  deleteDeployment(ref: string, force: boolean): Promise<void> {
    return this.json('DELETE', `/v1/deployments/${enc(ref)}`, {
      query: { force: force ? 'true' : undefined },
    });
  }

  startDeploy(ref: string, body: { params?: Record<string, unknown>; force?: boolean }): Promise<Attempt> {
    return this.json('POST', `/v1/deployments/${enc(ref)}/attempts`, { body });
  }

  rollback(ref: string, body: { to?: number; force?: boolean }): Promise<Attempt> {
    return this.json('POST', `/v1/deployments/${enc(ref)}/rollback`, { body });
  }

  teardown(ref: string, body: { confirm: string; force?: boolean }): Promise<Attempt> {
    return this.json('POST', `/v1/deployments/${enc(ref)}/teardown`, { body });
  }

  cancel(ref: string): Promise<Attempt> {
    return this.json('POST', `/v1/deployments/${enc(ref)}/cancel`, { body: {} });
  }

  resolve(ref: string, body: { state: string; reason: string }): Promise<Deployment> {
    return this.json('POST', `/v1/deployments/${enc(ref)}/resolve`, { body });
  }

  /** SPEC §13.3: answers an attempt waiting for approval. */
  answerApproval(id: string, answer: 'approve' | 'reject', reason: string): Promise<Attempt> {
    return this.json('POST', `/v1/attempts/${enc(id)}/${answer}`, { body: { reason } });
  }

  async freezes(): Promise<FreezeInfo[]> {
    return (await this.json<{ items: FreezeInfo[] }>('GET', '/v1/freezes')).items;
  }

  createFreeze(body: NewFreeze): Promise<FreezeInfo> {
    return this.json('POST', '/v1/freezes', { body });
  }

  liftFreeze(name: string): Promise<void> {
    return this.json('DELETE', `/v1/freezes/${enc(name)}`);
  }

  check(ref: string): Promise<{ deployment_id: string; status: string }> {
    return this.json('POST', `/v1/deployments/${enc(ref)}/check`, { body: {} });
  }

  async transitions(ref: string): Promise<Transition[]> {
    return (await this.json<{ items: Transition[] }>('GET', `/v1/deployments/${enc(ref)}/transitions`)).items;
  }

  listAttempts(ref: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Attempt>> {
    return this.json('GET', `/v1/deployments/${enc(ref)}/attempts`, { query });
  }

  /** Every attempt of a deployment, newest first. */
  async allAttempts(ref: string): Promise<Attempt[]> {
    const out: Attempt[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listAttempts(ref, { limit: 500, cursor });
      out.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  getAttempt(id: string): Promise<Attempt> {
    return this.json('GET', `/v1/attempts/${enc(id)}`);
  }
  async phases(id: string): Promise<Phase[]> {
    const res = await this.json<{ items: Phase[] }>('GET', `/v1/attempts/${enc(id)}/phases`);
    return res.items;
  }

  async attemptLog(id: string, offset = 0, tail?: number): Promise<{ text: string; nextOffset: number }> {
    const res = await this.raw('GET', `/v1/attempts/${enc(id)}/log`, {
      query: { offset: offset || undefined, tail },
      headers: { accept: 'text/plain, application/problem+json' },
    });
    if (!res.ok) throw await problemFrom(res);
    const text = await readText(res, this.baseUrl);
    const next = Number(res.headers.get('lifeline-next-offset'));
    return { text, nextOffset: Number.isFinite(next) && next > 0 ? next : offset + Buffer.byteLength(text) };
  }

  events(query: {
    after?: number;
    limit?: number;
    deployment?: string;
    stack?: string;
    type?: EventType[];
  }): Promise<EventPage> {
    return this.json('GET', '/v1/events', {
      query: { ...query, type: query.type && query.type.length > 0 ? query.type.join(',') : undefined },
    });
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

async function readText(res: Response, url: string): Promise<string> {
  try {
    return await res.text();
  } catch (err) {
    throw new ConnectionError(url, describeNetworkError(err));
  }
}

/** Builds the ApiError for a non-2xx response, from its problem+json body when it has one. */
export async function problemFrom(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // body lost: the status alone will have to do
  }
  try {
    const p = JSON.parse(text) as {
      code?: unknown;
      detail?: unknown;
      title?: unknown;
      errors?: unknown;
      trace_id?: unknown;
    };
    if (p && typeof p === 'object' && typeof p.code === 'string') {
      const detail =
        typeof p.detail === 'string' ? p.detail : typeof p.title === 'string' ? p.title : res.statusText;
      const errors = Array.isArray(p.errors)
        ? (p.errors as FieldError[]).filter((e) => e && typeof e.field === 'string')
        : [];
      return new ApiError(
        res.status,
        p.code,
        detail,
        errors,
        typeof p.trace_id === 'string' ? p.trace_id : null,
      );
    }
  } catch {
    // not JSON
  }
  const snippet = text.trim().slice(0, 200);
  return new ApiError(
    res.status,
    `HTTP_${res.status}`,
    snippet || res.statusText || 'the server answered with an error',
  );
}
