// The public HTTP API (SPEC §6), and the session: the bearer token (kept in sessionStorage) and the role the
// server says it has (response header Lifeline-Role, sent on every authenticated response).

const TOKEN_KEY = 'lifeline.token';
export const ROLE_HEADER = 'Lifeline-Role';
const RANK = { viewer: 0, operator: 1, admin: 2 };

/** A problem+json answer (RFC 9457) or a network failure. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code ?? (status === 0 ? 'NETWORK' : 'HTTP_ERROR');
    this.detail = problem?.detail ?? this.message;
    this.errors = Array.isArray(problem?.errors) ? problem.errors : [];
    this.traceId = problem?.trace_id;
  }
}

/** Session events: 'role' (the role became known or changed), 'auth' (a token is needed or was refused). */
export const sessionEvents = new EventTarget();

export const session = {
  token: readToken(),
  /** viewer | operator | admin, or null until the first answer. */
  role: null,
  /** The token's name as the server knows it (requested_by of its attempts), or null. */
  actor: null,
  /** True once the server has asked for a token (401). */
  authRequired: false,
};

function readToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  session.token = token || null;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: keep it in memory only */
  }
}

export function signOut() {
  setToken(null);
  session.actor = null;
  setRole(null);
}

function setRole(role) {
  const r = role && role in RANK ? role : null;
  if (r === session.role) return;
  session.role = r;
  sessionEvents.dispatchEvent(new CustomEvent('role', { detail: r }));
}

/** Whether the session's role is at least `min` (unknown counts as viewer: the server decides anyway). */
export function can(min) {
  return RANK[session.role ?? 'viewer'] >= RANK[min];
}

/** Headers every request carries. */
export function authHeaders() {
  return session.token ? { Authorization: `Bearer ${session.token}` } : {};
}

/** Called with every response: notes the role, and a 401 means the token is missing or refused. */
export function noteResponse(res) {
  const actor = res.headers.get('Lifeline-Actor');
  if (actor) {
    try {
      session.actor = decodeURIComponent(actor);
    } catch {
      session.actor = null;
    }
  }
  const role = res.headers.get(ROLE_HEADER);
  if (role) setRole(role);
  else if (res.ok && session.role === null) setRole('viewer'); // no header: show the least
  if (res.status === 401) {
    session.authRequired = true;
    sessionEvents.dispatchEvent(new CustomEvent('auth', { detail: { hadToken: Boolean(session.token) } }));
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) {
    if (v === undefined || v === null || v === '') continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const enc = encodeURIComponent;

/**
 * One request. Resolves with the JSON body (null for 204), or the Response when `raw`; rejects with an
 * ApiError carrying the problem's code.
 */
export async function request(method, path, { body, params, version, raw } = {}) {
  const headers = { Accept: 'application/json', ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (version !== undefined) headers['If-Match'] = `"${version}"`;
  let res;
  try {
    res = await fetch(`${path}${query(params)}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (err) {
    throw new ApiError(0, { detail: `cannot reach the server (${err?.message ?? err})` });
  }
  noteResponse(res);
  if (!res.ok) {
    let problem = null;
    try {
      problem = await res.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, problem);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

export const api = {
  plans: () => request('GET', '/v1/plans'),
  deployments: (params) => request('GET', '/v1/deployments', { params }),
  deployment: (ref) => request('GET', `/v1/deployments/${enc(ref)}`),
  attempt: (id) => request('GET', `/v1/attempts/${enc(id)}`),
  phases: (id) => request('GET', `/v1/attempts/${enc(id)}/phases`),
  attempts: (ref, params) => request('GET', `/v1/deployments/${enc(ref)}/attempts`, { params }),
  transitions: (ref) => request('GET', `/v1/deployments/${enc(ref)}/transitions`),
  events: (params) => request('GET', '/v1/events', { params }),
  /** The attempt's output from a byte offset: {text, nextOffset}. */
  async attemptLog(id, offset = 0) {
    const res = await request('GET', `/v1/attempts/${enc(id)}/log`, { params: { offset }, raw: true });
    const text = await res.text();
    const next = Number(res.headers.get('Lifeline-Next-Offset'));
    return {
      text,
      nextOffset: Number.isFinite(next) ? next : offset + new TextEncoder().encode(text).length,
    };
  },
  create: (body) => request('POST', '/v1/deployments', { body }),
  deploy: (ref, body, version) => request('POST', `/v1/deployments/${enc(ref)}/attempts`, { body, version }),
  rollback: (ref, body, version) =>
    request('POST', `/v1/deployments/${enc(ref)}/rollback`, { body, version }),
  teardown: (ref, body, version) =>
    request('POST', `/v1/deployments/${enc(ref)}/teardown`, { body, version }),
  cancel: (ref) => request('POST', `/v1/deployments/${enc(ref)}/cancel`),
  check: (ref) => request('POST', `/v1/deployments/${enc(ref)}/check`),
  resolve: (ref, body, version) => request('POST', `/v1/deployments/${enc(ref)}/resolve`, { body, version }),
  stacks: (params) => request('GET', '/v1/stacks', { params }),
  stack: (ref) => request('GET', `/v1/stacks/${enc(ref)}`),
  run: (id) => request('GET', `/v1/runs/${enc(id)}`),
  stackRuns: (ref, params) => request('GET', `/v1/stacks/${enc(ref)}/runs`, { params }),
  stackDeploy: (ref, body) => request('POST', `/v1/stacks/${enc(ref)}/deploy`, { body }),
  stackTeardown: (ref, body) => request('POST', `/v1/stacks/${enc(ref)}/teardown`, { body }),
  stackCancel: (ref) => request('POST', `/v1/stacks/${enc(ref)}/cancel`),
  waiting: (params) => request('GET', '/v1/attempts', { params: { waiting: 'true', ...params } }),
  approve: (id, body) => request('POST', `/v1/attempts/${enc(id)}/approve`, { body }),
  reject: (id, body) => request('POST', `/v1/attempts/${enc(id)}/reject`, { body }),
  remove: (ref, force, version) =>
    request('DELETE', `/v1/deployments/${enc(ref)}`, {
      params: { force: force ? 'true' : undefined },
      version,
    }),
};

/**
 * The seq of the newest event. The API has no "latest" read, but seqs are 1..N without gaps (SPEC §3), so
 * a gallop and a binary search over `GET /v1/events?after=X&limit=1` find N in O(log N) small reads, and
 * one page of up to 1000 finishes it. A list view starts its stream here, after reading the list, so that
 * nothing committed after the read is missed and nothing old is replayed.
 */
export async function headSeq() {
  const has = async (after) => (await api.events({ after, limit: 1 })).items.length > 0;
  if (!(await has(0))) return 0;
  let lo = 0; // some event is after lo
  let hi = 1000;
  while (await has(hi)) {
    lo = hi;
    hi *= 4;
  }
  // events after lo, none after hi
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2);
    if (await has(mid)) lo = mid;
    else hi = mid;
  }
  const page = await api.events({ after: lo, limit: 1000 });
  return page.items.length ? page.items[page.items.length - 1].seq : lo;
}

/** What a problem means for the person who clicked, in one sentence. */
export function explain(err) {
  if (!(err instanceof ApiError)) return String(err?.message ?? err);
  const byCode = {
    VERSION_MISMATCH:
      'The deployment changed while you were looking at it. Check its new state and try again.',
    AUTH_REQUIRED: 'Your token was not accepted. Sign in again.',
  };
  return byCode[err.code] ?? err.detail;
}
