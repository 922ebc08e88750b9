// Which browser requests the server answers: the Host check (against DNS rebinding) and the same-origin
// check on writes (against cross-site request forgery). Both hold in every auth mode; docs/security.md
// states the rules. Registered in app.ts as an onRequest hook before authentication.
import net from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { LifelineConfig } from '../config/types.ts';
import { makeProblem, sendProblem } from './problem.ts';

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (net.isIPv6(h)) {
    if (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1].startsWith('127.');
  }
  return false;
}

export interface HostName {
  /** Lower case; an IPv6 address without its brackets. */
  name: string;
  /** The explicit port, or '' when the header has none. */
  port: string;
}

const HOST_RE = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::(\d{1,5}))?$/;

/** A Host header value (`name`, `name:port`, `[v6]:port`), or null when it is not one. */
export function parseHostHeader(value: string): HostName | null {
  const m = HOST_RE.exec(value.trim().toLowerCase());
  if (!m) return null;
  const name = m[1] ?? m[2];
  if (m[1] !== undefined && !net.isIPv6(name)) return null;
  return { name, port: m[3] ?? '' };
}

/** An address as the socket reports it, in the form a Host header names it. */
function plainAddress(addr: string): string {
  const a = addr.toLowerCase();
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '']);

export interface HostPolicy {
  /** The configured listen host (a name or an address); wildcards are ignored. */
  listenHost: string;
  /** `name` (any port) or `name:port`, lower case. */
  allowedHosts: string[];
}

/**
 * Whether a request's Host names this server: a loopback name or the address the connection arrived on,
 * with the port it arrived on; the configured listen host with that port; or an `allowed_hosts` entry.
 * `local` is undefined for injected requests (no socket): then any port is accepted.
 */
export function hostAllowed(
  host: string | undefined,
  policy: HostPolicy,
  local: { address?: string; port?: number },
): boolean {
  if (host === undefined) return false;
  const h = parseHostHeader(host);
  if (!h) return false;
  for (const entry of policy.allowedHosts) {
    const e = parseHostHeader(entry);
    if (e && e.name === h.name && (e.port === '' || e.port === (h.port || '80'))) return true;
  }
  const portOk = local.port === undefined || (h.port || '80') === String(local.port);
  if (!portOk) return false;
  if (isLoopbackHost(h.name)) return true;
  if (local.address !== undefined && h.name === plainAddress(local.address)) return true;
  const listen = policy.listenHost.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  return !WILDCARDS.has(listen) && h.name === listen;
}

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SAFE_FETCH_SITES = new Set(['same-origin', 'none']);

/**
 * Why a write is cross-origin, or null when it is not. `Sec-Fetch-Site` must be same-origin or none when
 * sent; `Origin`, when sent, must be an http(s) origin whose host and port are the request's Host.
 * Clients that send neither (curl, the CLI) pass: they are not a browser acting for someone else.
 */
export function crossOriginReason(
  method: string,
  host: string | undefined,
  origin: string | undefined,
  fetchSite: string | undefined,
): string | null {
  if (!WRITES.has(method)) return null;
  if (fetchSite !== undefined && !SAFE_FETCH_SITES.has(fetchSite.trim().toLowerCase())) {
    return `Sec-Fetch-Site is ${JSON.stringify(fetchSite.slice(0, 40))}; writes must come from the same origin`;
  }
  if (origin === undefined) return null;
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return 'the Origin header is not an origin';
  }
  if (o.protocol !== 'http:' && o.protocol !== 'https:') return 'the Origin is not an http(s) origin';
  let target: string | null = null;
  try {
    // The Host read with the Origin's scheme, so that a default port (80, 443) compares equal.
    if (host !== undefined && parseHostHeader(host)) target = new URL(`${o.protocol}//${host.trim()}`).host;
  } catch {
    target = null;
  }
  if (target === null || target !== o.host) {
    return `the Origin ${o.origin.slice(0, 100)} is not this server's origin; writes must come from the same origin`;
  }
  return null;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/** Adds the hook: 421 for a Host that does not name this server, 403 for a cross-origin write. */
export function registerOriginChecks(app: FastifyInstance, config: LifelineConfig): void {
  const policy: HostPolicy = {
    listenHost: config.server.host,
    allowedHosts: config.server.allowedHosts ?? [],
  };
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    const host = first(req.headers.host);
    const socket = req.raw.socket as { localAddress?: string; localPort?: number } | undefined;
    const local = {
      address: typeof socket?.localAddress === 'string' ? socket.localAddress : undefined,
      port: typeof socket?.localPort === 'number' ? socket.localPort : undefined,
    };
    if (!hostAllowed(host, policy, local)) {
      const shown = host === undefined ? 'no Host header' : `Host ${JSON.stringify(host.slice(0, 100))}`;
      return sendProblem(
        reply,
        makeProblem(
          421,
          'FORBIDDEN',
          `${shown} does not name this server; use its address or add the name to server.allowed_hosts`,
          req.id,
          [{ field: 'host', reason: 'is not this server or a name in server.allowed_hosts' }],
        ),
      );
    }
    const why = crossOriginReason(
      req.method,
      host,
      first(req.headers.origin),
      first(req.headers['sec-fetch-site']),
    );
    if (why !== null) {
      return sendProblem(
        reply,
        makeProblem(403, 'FORBIDDEN', `cross-origin request refused: ${why}`, req.id, [
          { field: 'origin', reason: 'must be this server’s own origin for writes' },
        ]),
      );
    }
  });
}
