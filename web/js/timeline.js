// The state timeline: one horizontal bar, one segment per state the deployment was in, each as wide as
// the time it spent there (with a minimum so that a one-second state still shows), then the transitions.
import { h } from './dom.js';
import { stateLabel } from './states.js';
import { clock, duration, absolute } from './format.js';

/** Segments from transitions (oldest first): state `to` from its `at` until the next one (or now). */
export function segments(transitions, now = Date.now()) {
  return transitions.map((t, i) => {
    const start = Date.parse(t.at);
    const next = transitions[i + 1];
    const end = next ? Date.parse(next.at) : Math.max(now, start);
    return { state: t.to, start, end, ms: Math.max(0, end - start), current: !next, t };
  });
}

/** The bar with its time axis. */
export function timelineBar(transitions, now = Date.now()) {
  const segs = segments(transitions, now);
  if (segs.length === 0) return h('p', { class: 'muted' }, 'No transitions yet.');
  const first = segs[0].start;
  const last = segs[segs.length - 1].end;
  const total = Math.max(1, last - first);
  const summary = segs
    .map((s) => `${stateLabel(s.state)} ${duration(s.ms)}${s.current ? ' (now)' : ''}`)
    .join(', then ');
  const bar = h(
    'div',
    { class: 'timeline-bar', role: 'img', 'aria-label': `State over time: ${summary}` },
    segs.map((s) => {
      return h(
        'div',
        {
          class: ['seg', `tone-${s.state}`, s.current && 'seg-current'],
          dataset: { state: s.state },
          style: { flexGrow: String(Math.max(s.ms, 1)) },
          title: `${stateLabel(s.state)} · ${duration(s.ms)}${s.current ? ' so far' : ''} · from ${absolute(s.t.at)}`,
        },
        // Hidden by a container query when the segment is too narrow for it.
        h('span', { class: 'seg-label', 'aria-hidden': 'true' }, stateLabel(s.state)),
      );
    }),
  );
  const axis = h(
    'div',
    { class: 'timeline-axis', 'aria-hidden': 'true' },
    h('span', null, clock(first)),
    h('span', null, `${duration(total)} total`),
    h('span', null, segs[segs.length - 1].current ? 'now' : clock(last)),
  );
  return h('div', { class: 'timeline' }, bar, axis);
}

/** The transitions as a list, newest first: when, what, who, why, how long. */
export function transitionList(transitions, now = Date.now()) {
  const segs = segments(transitions, now);
  return h(
    'ol',
    { class: 'transitions', reversed: true },
    segs
      .slice()
      .reverse()
      .map((s) =>
        h(
          'li',
          { class: 'transition' },
          h('span', { class: ['swatch', `tone-${s.state}`], 'aria-hidden': 'true' }),
          h(
            'div',
            { class: 'transition-main' },
            h(
              'div',
              null,
              h('strong', null, stateLabel(s.state)),
              s.t.from ? h('span', { class: 'muted' }, ` from ${stateLabel(s.t.from)}`) : null,
              h('span', { class: 'muted' }, ` · ${s.t.trigger.replaceAll('_', ' ')} by `),
              h('span', { class: 'actor' }, s.t.actor),
            ),
            s.t.reason ? h('div', { class: 'transition-reason' }, s.t.reason) : null,
          ),
          h(
            'div',
            { class: 'transition-when' },
            h('time', { datetime: s.t.at, title: absolute(s.t.at) }, clock(s.t.at)),
            h(
              'span',
              { class: 'muted' },
              s.current ? `${duration(s.ms)} so far` : `lasted ${duration(s.ms)}`,
            ),
          ),
        ),
      ),
  );
}
