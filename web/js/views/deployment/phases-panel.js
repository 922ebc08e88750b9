// The deployment page's phases card (SPEC §9.4): the phases of the attempt whose output the log shows, as a
// bar (one segment per phase, as wide as it lasted) and a list with each phase's duration. Live like the
// log: a phase event of that attempt on the stream reads them again (the server's /phases is the one rule
// for what an event starts or ends), and the open phase's time counts up every second (tick).
import { api } from '../../api.js';
import { h, setChildren } from '../../dom.js';
import { duration } from '../../format.js';

const PALETTE = 6; // phase-0 … phase-5 in app.css, reused in turn

export function phasesPanel() {
  const bar = h('div', { class: 'phase-bar', 'data-testid': 'phase-bar', role: 'img' });
  const list = h('ol', { class: 'phase-list' });
  const empty = h('p', { class: 'muted empty-inline' }, 'This attempt reported no phases.');
  const title = h('h2', { id: 'phases-title' }, 'Phases');
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'phases-title', 'data-testid': 'phases', hidden: true },
    h('div', { class: 'card-head' }, title),
    bar,
    list,
    empty,
  );
  let token = 0;
  let shown = null; // { attempt, phases } on screen
  let wanted = null; // the attempt asked for last (shown once its read returns)
  let again = null;

  function render(attempt, phases) {
    shown = { attempt, phases };
    const now = Date.now();
    const took = (p) => p.duration_ms ?? Math.max(0, now - Date.parse(p.started_at));
    el.hidden = false;
    title.textContent = `Phases of attempt #${attempt.number}`;
    empty.hidden = phases.length > 0;
    bar.hidden = phases.length === 0;
    bar.setAttribute(
      'aria-label',
      phases.map((p) => `${p.phase}: ${duration(took(p))}`).join(', ') || 'no phases',
    );
    setChildren(
      bar,
      phases.map((p, i) =>
        h(
          'div',
          {
            class: ['phase-seg', `phase-${i % PALETTE}`, p.ended_at ? null : 'phase-open'],
            // Width by duration, through the CSSOM (the CSP allows that, not inline style attributes).
            style: { flexGrow: String(Math.max(took(p), 1)) },
            title: `${p.phase}: ${duration(took(p))}`,
          },
          h('span', { class: 'seg-label' }, p.phase),
        ),
      ),
    );
    setChildren(
      list,
      phases.map((p, i) =>
        h(
          'li',
          { dataset: { phase: p.phase } },
          h('span', { class: ['phase-swatch', `phase-${i % PALETTE}`], 'aria-hidden': 'true' }),
          h('span', { class: 'phase-name' }, p.phase),
          ' ',
          h('span', { class: 'muted phase-took' }, p.ended_at ? duration(took(p)) : `${duration(took(p))}…`),
        ),
      ),
    );
  }

  /** Reads and shows the phases of `attempt` (an Attempt, or null to hide the card). */
  async function load(attempt) {
    const mine = ++token;
    wanted = attempt;
    if (!attempt) {
      shown = null;
      el.hidden = true;
      return;
    }
    try {
      const { items } = await api.phases(attempt.id);
      if (mine === token) render(attempt, items);
    } catch {
      // A failed read leaves what was shown; the next change reads again.
    }
  }

  /** A stream event: a `runner_event` that starts or ends a phase of the attempt shown reads them again. */
  function onEvent(ev) {
    const d = ev.data ?? {};
    if (ev.type !== 'runner_event' || !wanted || ev.attempt_id !== wanted.id) return;
    if (typeof d.phase !== 'string' && typeof d.phase_end !== 'string') return;
    // One read for a burst of events (a replay after reconnecting brings many at once).
    clearTimeout(again);
    const attempt = wanted;
    again = setTimeout(() => void load(attempt), 100);
  }

  /** Every second: the open phase's time so far. */
  function tick() {
    if (shown && shown.phases.some((p) => !p.ended_at)) render(shown.attempt, shown.phases);
  }

  function close() {
    clearTimeout(again);
    token++;
  }

  return { el, load, onEvent, tick, close };
}
