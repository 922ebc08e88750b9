// State badges: a coloured dot and the state's name (the colour is never the only signal).
import { h } from './dom.js';

export const DEPLOYMENT_STATES = [
  'pending',
  'deploying',
  'ready',
  'failed',
  'unknown',
  'tearing_down',
  'torn_down',
];
export const ACTIVE_STATES = new Set(['deploying', 'tearing_down']);

const LABEL = {
  pending: 'pending',
  deploying: 'deploying',
  ready: 'ready',
  failed: 'failed',
  unknown: 'unknown',
  tearing_down: 'tearing down',
  torn_down: 'torn down',
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  cancelled: 'cancelled',
};

/** Attempt states share the deployment palette. */
const TONE = {
  queued: 'pending',
  running: 'deploying',
  succeeded: 'ready',
  failed: 'failed',
  cancelled: 'torn_down',
  unknown: 'unknown',
};

export function stateLabel(state) {
  return LABEL[state] ?? state;
}

/** A deployment state badge; `data-state` is what tests and styles key on. */
export function stateBadge(state, { large = false } = {}) {
  return h(
    'span',
    {
      class: ['badge', `tone-${state}`, large && 'badge-lg'],
      dataset: { state },
      'data-testid': 'state-badge',
    },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    stateLabel(state),
  );
}

/** Changes a badge in place (keeps focus and position), with a short highlight. */
export function updateBadge(el, state) {
  if (!el || el.dataset.state === state) return;
  el.className = el.className.replace(/\btone-[a-z_]+\b/, `tone-${state}`);
  el.dataset.state = state;
  el.lastChild.textContent = stateLabel(state);
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
}

export function attemptBadge(state) {
  return h(
    'span',
    { class: ['badge', 'badge-sm', `tone-${TONE[state] ?? 'pending'}`], dataset: { attemptState: state } },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    stateLabel(state),
  );
}
