// The stacks list (SPEC §12.5): name, state, how many units, the active run. Kept live from the global
// event stream: a stack or run transition re-reads that stack (one small read, debounced).
import { api, explain, headSeq } from '../api.js';
import { runBadge, stateBadge, updateBadge } from '../badges.js';
import { announce, h, setChildren } from '../dom.js';
import { relTime } from '../format.js';
import { openStream } from '../sse.js';
import { setConn, stackHref } from '../shell.js';
import { stateLabel } from '../states.js';

const PAGE = 200;

export function mountStacks(root) {
  const rows = new Map(); // stack id -> stack
  const trs = new Map(); // stack id -> <tr>
  const timers = new Map();
  let stream = null;
  let destroyed = false;

  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'dtable', 'data-testid': 'stacks' },
    h('caption', { class: 'visually-hidden' }, 'Stacks, newest first. States update live.'),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Name', 'State', 'Units', 'Active run', 'Updated'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    tbody,
  );
  const empty = h(
    'div',
    { class: 'empty', hidden: true },
    h('p', { class: 'empty-title' }, 'No stacks yet'),
    h(
      'p',
      { class: 'muted' },
      'Create one from a spec file: ',
      h('code', null, 'lifeline stack create -f FILE'),
    ),
  );
  const errorBox = h('div', { class: 'callout callout-error', role: 'alert', hidden: true });
  setChildren(
    root,
    h(
      'section',
      { class: 'page', 'aria-labelledby': 'stacks-title' },
      h('div', { class: 'page-head' }, h('div', null, h('h1', { id: 'stacks-title' }, 'Stacks'), count)),
      errorBox,
      h('div', { class: 'card table-card' }, h('div', { class: 'table-wrap' }, table), empty),
    ),
  );

  const runCell = (s) =>
    s.active_run
      ? h(
          'span',
          { class: 'run-cell' },
          h('span', { class: 'muted' }, s.active_run.kind),
          runBadge(s.active_run.state),
        )
      : h('span', { class: 'muted' }, '—');

  function buildRow(s) {
    return h(
      'tr',
      { dataset: { id: s.id, name: s.name }, 'data-testid': `stack-row-${s.name}` },
      h(
        'td',
        { class: 'cell-name', dataset: { label: 'Name' } },
        h('a', { href: stackHref(s.name), class: 'name-link' }, s.name),
      ),
      h('td', { class: 'cell-state', dataset: { label: 'State' } }, stateBadge(s.state)),
      h('td', { class: 'cell-units', dataset: { label: 'Units' } }, String(s.units.length)),
      h('td', { class: 'cell-run', dataset: { label: 'Active run' } }, runCell(s)),
      h('td', { class: 'cell-updated', dataset: { label: 'Updated' } }, relTime(s.updated_at)),
    );
  }

  function updateRow(s) {
    const tr = trs.get(s.id);
    if (!tr) return;
    updateBadge(tr.querySelector('.cell-state .badge'), s.state);
    tr.querySelector('.cell-units').textContent = String(s.units.length);
    setChildren(tr.querySelector('.cell-run'), runCell(s));
    setChildren(tr.querySelector('.cell-updated'), relTime(s.updated_at));
  }

  function renderRows() {
    const list = [...rows.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    const frag = document.createDocumentFragment();
    for (const s of list) {
      let tr = trs.get(s.id);
      if (!tr) trs.set(s.id, (tr = buildRow(s)));
      frag.appendChild(tr);
    }
    for (const [id, tr] of trs) if (!rows.has(id)) (tr.remove(), trs.delete(id));
    tbody.replaceChildren(frag);
    count.textContent = `${list.length} ${list.length === 1 ? 'stack' : 'stacks'}`;
    empty.hidden = list.length > 0;
    table.hidden = list.length === 0;
  }

  function refreshOne(id) {
    clearTimeout(timers.get(id));
    timers.set(
      id,
      setTimeout(async () => {
        timers.delete(id);
        try {
          const s = await api.stack(id);
          if (destroyed) return;
          const had = rows.get(id);
          if (had && had.version > s.version) return;
          rows.set(id, s);
          if (had) {
            updateRow(s);
            if (had.state !== s.state) announce(`${s.name} is ${stateLabel(s.state)}`);
          } else renderRows();
        } catch (err) {
          if (err.status === 404 && rows.delete(id)) renderRows();
        }
      }, 200),
    );
  }

  function onEvent(ev) {
    if (destroyed || !ev.stack_id) return;
    // Stack and run transitions move the row; a unit's own event may create or delete the stack.
    const entity = ev.data?.entity;
    if (entity === 'stack' || entity === 'run' || !rows.has(ev.stack_id)) refreshOne(ev.stack_id);
  }

  async function load() {
    try {
      const after = await headSeq();
      const page = await api.stacks({ limit: PAGE });
      if (destroyed) return;
      for (const s of page.items) rows.set(s.id, s);
      renderRows();
      stream = openStream({
        path: '/v1/events/stream',
        params: { after, type: 'state_transition,deployment_deleted' },
        onEvent,
        onStatus: (st) => !destroyed && setConn(st),
      });
    } catch (err) {
      if (destroyed) return;
      errorBox.textContent = `Could not load the stacks: ${explain(err)}`;
      errorBox.hidden = false;
    }
  }
  void load();

  return {
    title: 'Stacks',
    destroy() {
      destroyed = true;
      stream?.close();
      for (const t of timers.values()) clearTimeout(t);
    },
  };
}
