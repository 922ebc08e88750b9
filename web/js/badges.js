// State badges: a coloured dot and the state's name (the colour is never the only signal).
import { h } from './dom.js';
import { stateLabel } from './states.js';

/** Attempt states share the deployment palette. */
const TONE = {
  queued: 'pending',
  running: 'deploying',
  succeeded: 'ready',
  failed: 'failed',
  cancelled: 'torn_down',
  unknown: 'unknown',
};

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

/** A current attempt as the list and the deployment page show it: number (#… until known), kind, state. */
export function attemptSummary(a) {
  return h(
    'span',
    { class: 'attempt-cell' },
    h('span', { class: 'attempt-no' }, a.number ? `#${a.number}` : '#…'),
    h('span', { class: 'muted' }, a.kind),
    attemptBadge(a.state),
  );
}

/** A drifted deployment's mark (SPEC §14.2): "drift: absent", beside its state badge; null when none. */
export function driftBadge(drift) {
  if (!drift) return null;
  return h(
    'span',
    {
      class: ['badge', 'badge-drift'],
      dataset: { verdict: drift.verdict },
      'data-testid': 'drift-badge',
      title: `A check found it ${drift.verdict} since ${new Date(drift.since).toLocaleString()}`,
    },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    `drift: ${drift.verdict}`,
  );
}

/** A run's state, or a unit's step in a run (SPEC §12.4), in the deployment palette. */
const RUN_TONE = {
  queued: 'pending',
  running: 'deploying',
  succeeded: 'ready',
  failed: 'failed',
  cancelled: 'torn_down',
  unknown: 'unknown',
  waiting: 'pending',
  launched: 'deploying',
  skipped: 'torn_down',
  not_needed: 'torn_down',
};

export function runBadge(state) {
  return h(
    'span',
    {
      class: ['badge', 'badge-sm', `tone-${RUN_TONE[state] ?? 'pending'}`],
      dataset: { runState: state },
    },
    h('span', { class: 'dot', 'aria-hidden': 'true' }),
    stateLabel(state),
  );
}
