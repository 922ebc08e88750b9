// The deployment page's attempts card: one row per attempt, newest first, with its result, how long it took
// (ticking while it runs), and a button that shows its output in the log card.
import { attemptBadge } from '../../badges.js';
import { h, setChildren } from '../../dom.js';
import { absolute, duration, relTime } from '../../format.js';

function tookText(a) {
  if (!a.started_at) return a.state === 'queued' ? 'waiting' : '—';
  const end = a.ended_at ? Date.parse(a.ended_at) : Date.now();
  return a.ended_at
    ? duration(end - Date.parse(a.started_at))
    : `${duration(end - Date.parse(a.started_at))}…`;
}

/** What an attempt came to, in words; `detail` says why one that never ran ended (e.g. no program). */
export function resultText(a) {
  const bits = [];
  if (a.rc !== null && a.rc !== undefined) bits.push(`rc ${a.rc}`);
  if (a.reason) bits.push(a.reason.replaceAll('_', ' ') + (a.detail ? `: ${a.detail}` : ''));
  else if (a.detail) bits.push(a.detail);
  if (a.recovered) bits.push('recovered');
  if (a.force) bits.push('forced');
  if (a.rollback_of) bits.push(`rollback to #${a.rollback_of}`);
  return bits.length ? bits.join(' · ') : a.state === 'succeeded' ? 'ok' : '—';
}

/** onShow(attempt): the reader asked for that attempt's output. */
export function attemptsTable({ onShow }) {
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'dtable attempts', 'data-testid': 'attempts' },
    h('caption', { class: 'visually-hidden' }, 'Attempts, newest first'),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Attempt', 'State', 'Result', 'Requested by', 'Queued', 'Took', 'Output'].map((t) =>
          h('th', { scope: 'col' }, t),
        ),
      ),
    ),
    body,
  );
  const empty = h('p', { class: 'muted empty-inline', hidden: true }, 'No attempts yet.');
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'attempts-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'attempts-title' }, 'Attempts')),
    h('div', { class: 'table-wrap' }, table),
    empty,
  );

  function row(a, shown) {
    const btn = h(
      'button',
      {
        type: 'button',
        class: 'btn btn-sm',
        'aria-pressed': shown ? 'true' : 'false',
        'aria-label': `Show output of attempt #${a.number}`,
      },
      'Show',
    );
    btn.addEventListener('click', () => onShow(a));
    return h(
      'tr',
      { dataset: { attempt: String(a.number) } },
      h(
        'td',
        { dataset: { label: 'Attempt' } },
        h(
          'span',
          null,
          h('span', { class: 'attempt-no' }, `#${a.number}`),
          ' ',
          h('span', { class: 'muted' }, a.kind),
        ),
      ),
      h('td', { dataset: { label: 'State' } }, attemptBadge(a.state)),
      h('td', { dataset: { label: 'Result' } }, resultText(a)),
      h('td', { dataset: { label: 'By' } }, a.requested_by),
      h('td', { dataset: { label: 'Queued' } }, relTime(a.queued_at)),
      h(
        'td',
        {
          dataset: { label: 'Took' },
          class: 'took',
          title: a.started_at ? `started ${absolute(a.started_at)}` : null,
        },
        tookText(a),
      ),
      h('td', { dataset: { label: 'Output' } }, btn),
    );
  }

  /** Every row again; the focus stays on the row it was in. */
  function render(attempts, shownId) {
    empty.hidden = attempts.length > 0;
    table.hidden = attempts.length === 0;
    const focused = body.contains(document.activeElement)
      ? document.activeElement.closest('tr')?.dataset.attempt
      : null;
    setChildren(
      body,
      attempts.map((a) => row(a, a.id === shownId)),
    );
    if (focused) body.querySelector(`tr[data-attempt="${focused}"] button`)?.focus();
  }

  /** The running attempts' "took", once a second. */
  function tick(attempts) {
    for (const td of body.querySelectorAll('td.took')) {
      const n = Number(td.parentElement.dataset.attempt);
      const a = attempts.find((x) => x.number === n);
      if (a && !a.ended_at) td.textContent = tookText(a);
    }
  }

  return { el, render, tick };
}
