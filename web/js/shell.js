// What the views share: the connection indicator in the top bar, navigation, and the plans (read once).
import { api } from './api.js';

const CONN_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  auth: 'Not signed in',
  gone: '',
  closed: '',
  idle: '',
};

/** Shows the state of the view's event stream in the top bar. */
export function setConn(status) {
  const el = document.getElementById('conn');
  if (!el) return;
  const text = CONN_TEXT[status] ?? '';
  el.dataset.status = status;
  el.textContent = text;
  el.title =
    status === 'live'
      ? 'Receiving live updates from the event stream'
      : status === 'reconnecting'
        ? 'The event stream dropped; reconnecting without losing events'
        : '';
}

export function navigate(hash) {
  if (location.hash === hash) return;
  location.hash = hash;
}

export function deploymentHref(name) {
  return `#/d/${encodeURIComponent(name)}`;
}

export function stackHref(name) {
  return `#/s/${encodeURIComponent(name)}`;
}

let plans = null;
/** The configured plans, by name (cached for the page's life; plans change only with a server restart). */
export async function getPlans({ fresh = false } = {}) {
  if (!plans || fresh) {
    const res = await api.plans();
    plans = new Map(res.items.map((p) => [p.name, p]));
  }
  return plans;
}
