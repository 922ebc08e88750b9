// The deployments list's rules, apart from the page: the filters (from and to the address), which rows they
// show and in what order, what each event of the global stream does to a row, and the create form's name
// and labels. Pure (no DOM, no I/O), so Node tests run it.
import { DEPLOYMENT_STATES, acceptedAttempt, stateLabel } from '../../states.js';

export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The filters from the route's query; an unknown state is no filter. */
export function parseFilters(params) {
  const filters = { state: params.get('state') ?? '', plan: params.get('plan') ?? '' };
  if (!DEPLOYMENT_STATES.includes(filters.state)) filters.state = '';
  return filters;
}

/** The route that keeps the filters (so a reload or a shared link shows the same list). */
export function filtersHash(filters) {
  const q = new URLSearchParams();
  if (filters.state) q.set('state', filters.state);
  if (filters.plan) q.set('plan', filters.plan);
  const qs = q.toString();
  return `#/${qs ? `?${qs}` : ''}`;
}

export const matches = (filters, d) =>
  (!filters.state || d.state === filters.state) && (!filters.plan || d.plan === filters.plan);

/** Creation order, newest first (the id breaks ties), as the API lists them. */
export function newestFirst(deployments) {
  return [...deployments].sort((a, b) =>
    a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1,
  );
}

/** "3 deployments", "1 deployment", "100+ deployments" while there are more pages. */
export function countText(shown, more) {
  return `${shown}${more ? '+' : ''} ${shown === 1 ? 'deployment' : 'deployments'}`;
}

/**
 * What a fresh read of one deployment does to the rows: 'skip' it (older than the row, or new and not
 * matching the filters), 'add' a row, or 'update' the row.
 */
export function refreshed(have, d, filters) {
  if (have && have.version > d.version) return 'skip';
  if (!have) return matches(filters, d) ? 'add' : 'skip';
  return 'update';
}

/**
 * One event of the global stream, given the row it is about (or undefined when not loaded). Returns what to
 * do: `row`, the row's next value (a new object); `remove`; `fetch`, read the deployment again (a new one,
 * one that now matches, or the attempt number after a transition); `announce`.
 */
export function listEvent(have, filters, ev) {
  if (!ev.deployment_id) return {};
  const data = ev.data ?? {};
  if (ev.type === 'deployment_created') {
    return { fetch: !have && (!filters.plan || data.plan === filters.plan) };
  }
  if (ev.type === 'deployment_deleted') return { remove: Boolean(have) };
  // A retry scheduled, cancelled or run out (SPEC §9.1): the deployment's `retry` says which, if any.
  if (ev.type.startsWith('retry_')) return { fetch: Boolean(have) };
  // Drift found or ended on a ready deployment (SPEC §14.2): the event says it all.
  if (ev.type === 'drift_detected' || ev.type === 'drift_cleared') {
    if (!have) return {};
    const drift =
      ev.type === 'drift_detected'
        ? { since: data.since, verdict: data.verdict, heal_at: data.heal_at ?? null }
        : null;
    return { row: { ...have, drift } };
  }
  if (ev.type !== 'state_transition') return {};
  if (data.entity === 'attempt') {
    if (have?.current_attempt?.id !== ev.attempt_id) return {};
    return { row: { ...have, current_attempt: { ...have.current_attempt, state: data.to } } };
  }
  // Not loaded (filtered out, or beyond the first page): fetch it if it now matches.
  if (!have) return { fetch: !filters.state || data.to === filters.state };
  if (typeof data.version === 'number' && data.version <= have.version) return {}; // already shown
  const row = {
    ...have,
    state: data.to,
    version: data.version ?? have.version,
    state_changed_at: ev.at,
    updated_at: ev.at,
  };
  if (ev.attempt_id && ev.attempt_id !== have.current_attempt?.id) {
    row.current_attempt = acceptedAttempt(ev.attempt_id, data.to);
  }
  return {
    row,
    announce: matches(filters, row) ? `${row.name} is now ${stateLabel(row.state)}` : null,
    fetch: true, // the attempt number and the rest, from the API
  };
}

/** "a=b, c=d" into {a: "b", c: "d"}; empty gives undefined; a part without a key throws. */
export function parseLabels(text) {
  const out = {};
  const parts = text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`Labels: “${part}” is not key=value`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return parts.length ? out : undefined;
}
