// The deployments list page: the table (newest first, filtered by state and plan), its state badges kept
// live from the global event stream, paging, and the button that opens the create form for operators.
// The rules (filters, order, what an event does to a row) are in list/model.js.
import { api, can, explain, headSeq } from '../api.js';
import { attemptSummary, driftBadge, stateBadge, updateBadge } from '../badges.js';
import { announce, h, setChildren } from '../dom.js';
import { relTime } from '../format.js';
import { retryCountdown } from '../retry.js';
import { openStream } from '../sse.js';
import { deploymentHref, getPlans, setConn } from '../shell.js';
import { DEPLOYMENT_STATES, stateLabel } from '../states.js';
import { createForm } from './list/create-form.js';
import { mountWebhooksPanel } from './list/webhooks-panel.js';
import {
  countText,
  filtersHash,
  listEvent,
  matches,
  newestFirst,
  parseFilters,
  refreshed,
} from './list/model.js';

const PAGE = 100;

export function mountList(root, { params }) {
  const filters = parseFilters(params);
  const rows = new Map(); // id -> deployment
  const trs = new Map(); // id -> <tr>
  const refreshTimers = new Map();
  let stream = null;
  let destroyed = false;
  let nextCursor = null;
  let plans = new Map();
  const shown = (d) => matches(filters, d);

  // ---- skeleton --------------------------------------------------------------------------------
  const count = h('span', { class: 'count', 'aria-live': 'polite' });
  const newBtn = h(
    'button',
    { type: 'button', class: 'btn btn-primary', 'aria-expanded': 'false', 'data-action': 'new' },
    'New deployment',
  );
  const head = h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Deployments'), count), newBtn);
  const createBox = h('div', { class: 'create-box', hidden: true });

  const stateSel = h(
    'select',
    { id: 'filter-state', name: 'state' },
    h('option', { value: '' }, 'All states'),
    DEPLOYMENT_STATES.map((s) => h('option', { value: s, selected: s === filters.state }, stateLabel(s))),
  );
  const planSel = h('select', { id: 'filter-plan', name: 'plan' }, h('option', { value: '' }, 'All plans'));
  const clearBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-sm' }, 'Clear filters');
  const filterForm = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter deployments' },
    h('div', { class: 'field-inline' }, h('label', { for: 'filter-state' }, 'State'), stateSel),
    h('div', { class: 'field-inline' }, h('label', { for: 'filter-plan' }, 'Plan'), planSel),
    clearBtn,
  );

  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'dtable', 'data-testid': 'deployments' },
    h('caption', { class: 'visually-hidden' }, 'Deployments, newest first. States update live.'),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        ['Name', 'Plan', 'State', 'Current attempt', 'Updated'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    tbody,
  );
  const empty = h('div', { class: 'empty', hidden: true });
  const more = h('button', { type: 'button', class: 'btn', hidden: true }, 'Show more');
  const errorBox = h('div', { class: 'callout callout-error', role: 'alert', hidden: true });
  const webhooks = mountWebhooksPanel();
  const card = h('div', { class: 'card table-card' }, h('div', { class: 'table-wrap' }, table), empty);
  setChildren(
    root,
    h(
      'section',
      { class: 'page', 'aria-labelledby': 'list-title' },
      head,
      createBox,
      errorBox,
      filterForm,
      card,
      h('div', { class: 'more' }, more),
      webhooks.el,
    ),
  );
  head.querySelector('h1').id = 'list-title';

  // ---- rows ------------------------------------------------------------------------------------
  const attemptCell = (d) =>
    d.current_attempt ? attemptSummary(d.current_attempt) : h('span', { class: 'muted' }, '—');
  // A waiting automatic retry under the state badge, its text ticked every second (retryTicker).
  const retryCell = (d) => {
    const c = retryCountdown(d.retry);
    return c ? h('span', { class: 'retry-countdown muted', dataset: { at: d.retry.at } }, c.text) : null;
  };

  function buildRow(d) {
    return h(
      'tr',
      { dataset: { id: d.id, name: d.name }, 'data-testid': `row-${d.name}` },
      h(
        'td',
        { class: 'cell-name', dataset: { label: 'Name' } },
        h('a', { href: deploymentHref(d.name), class: 'name-link' }, d.name),
        Object.keys(d.labels ?? {}).length
          ? h(
              'span',
              { class: 'labels' },
              Object.entries(d.labels).map(([k, v]) => h('span', { class: 'label-chip' }, `${k}=${v}`)),
            )
          : null,
      ),
      h('td', { dataset: { label: 'Plan' } }, d.plan),
      h(
        'td',
        { class: 'cell-state', dataset: { label: 'State' } },
        stateBadge(d.state),
        h('span', { class: 'cell-drift' }, driftBadge(d.drift)),
        h('span', { class: 'cell-retry' }, retryCell(d)),
      ),
      h('td', { class: 'cell-attempt', dataset: { label: 'Attempt' } }, attemptCell(d)),
      h('td', { class: 'cell-updated', dataset: { label: 'Updated' } }, relTime(d.updated_at)),
    );
  }

  function updateRow(d) {
    const tr = trs.get(d.id);
    if (!tr) return;
    updateBadge(tr.querySelector('.cell-state .badge'), d.state);
    setChildren(tr.querySelector('.cell-retry'), retryCell(d));
    setChildren(tr.querySelector('.cell-drift'), driftBadge(d.drift));
    setChildren(tr.querySelector('.cell-attempt'), attemptCell(d));
    setChildren(tr.querySelector('.cell-updated'), relTime(d.updated_at));
    tr.hidden = !shown(d);
  }

  /** Rows in creation order, newest first; rows that no longer match the filters are hidden, not dropped. */
  function renderRows() {
    const frag = document.createDocumentFragment();
    for (const d of newestFirst(rows.values())) {
      let tr = trs.get(d.id);
      if (!tr) {
        tr = buildRow(d);
        trs.set(d.id, tr);
      }
      tr.hidden = !shown(d);
      frag.appendChild(tr);
    }
    for (const [id, tr] of trs) if (!rows.has(id)) (tr.remove(), trs.delete(id));
    tbody.replaceChildren(frag);
    renderCount();
  }

  function renderCount() {
    const n = [...rows.values()].filter(shown).length;
    count.textContent = countText(n, Boolean(nextCursor));
    const filtered = filters.state || filters.plan;
    empty.hidden = n > 0;
    table.hidden = n === 0;
    setChildren(
      empty,
      filtered
        ? h('p', null, 'No deployment matches these filters.')
        : [
            h('p', { class: 'empty-title' }, 'No deployments yet'),
            h(
              'p',
              { class: 'muted' },
              can('operator')
                ? 'Create one with “New deployment”, or from a terminal: '
                : 'Deployments appear here as soon as they are created, e.g. with ',
              h('code', null, 'lifeline create NAME --plan PLAN'),
            ),
          ],
    );
    more.hidden = !nextCursor;
  }

  // ---- loading ---------------------------------------------------------------------------------
  async function loadPage(cursor) {
    const page = await api.deployments({
      state: filters.state || undefined,
      plan: filters.plan || undefined,
      limit: PAGE,
      cursor,
    });
    for (const d of page.items) {
      const have = rows.get(d.id);
      if (!have || have.version <= d.version) rows.set(d.id, d);
    }
    nextCursor = page.next_cursor;
  }

  async function load() {
    errorBox.hidden = true;
    try {
      plans = await getPlans();
      fillPlans();
      // Where the stream starts: read before the list, so nothing committed after the list read is lost.
      const after = await headSeq();
      rows.clear();
      await loadPage(undefined);
      if (destroyed) return;
      trs.clear();
      tbody.replaceChildren();
      renderRows();
      startStream(after);
    } catch (err) {
      if (destroyed) return;
      errorBox.textContent = `Could not load the deployments: ${explain(err)}`;
      errorBox.hidden = false;
    }
  }

  function fillPlans() {
    const names = [...plans.keys()].sort();
    if (filters.plan && !names.includes(filters.plan)) names.push(filters.plan);
    setChildren(
      planSel,
      h('option', { value: '' }, 'All plans'),
      names.map((n) => h('option', { value: n, selected: n === filters.plan }, n)),
    );
  }

  // ---- live updates ----------------------------------------------------------------------------
  const retryTicker = setInterval(() => {
    if (document.hidden) return;
    for (const tr of trs.values()) {
      const d = rows.get(tr.dataset.id);
      const el = tr.querySelector('.retry-countdown');
      const c = el && d ? retryCountdown(d.retry) : null;
      if (c && el.textContent !== c.text) el.textContent = c.text;
    }
  }, 1000);

  function startStream(after) {
    stream?.close();
    stream = openStream({
      path: '/v1/events/stream',
      params: {
        after,
        type: 'state_transition,deployment_created,deployment_deleted,retry_scheduled,retry_cancelled,retry_exhausted,drift_detected,drift_cleared',
      },
      onEvent,
      onStatus: (s) => !destroyed && setConn(s),
    });
  }

  function scheduleRefresh(id) {
    clearTimeout(refreshTimers.get(id));
    refreshTimers.set(
      id,
      setTimeout(async () => {
        refreshTimers.delete(id);
        try {
          const d = await api.deployment(id);
          if (destroyed) return;
          const what = refreshed(rows.get(id), d, filters);
          if (what === 'skip') return;
          rows.set(id, d);
          if (what === 'add') renderRows();
          else updateRow(d);
        } catch (err) {
          if (err.status === 404) {
            rows.delete(id);
            renderRows();
          }
        }
      }, 250),
    );
  }

  function onEvent(ev) {
    if (destroyed) return;
    const id = ev.deployment_id;
    const { row, remove, fetch, announce: text } = listEvent(rows.get(id), filters, ev);
    if (remove) {
      rows.delete(id);
      renderRows();
    }
    if (row) {
      rows.set(id, row);
      updateRow(row);
    }
    if (text) announce(text);
    if (fetch) scheduleRefresh(id);
  }

  // ---- filters ---------------------------------------------------------------------------------
  function applyFilters() {
    history.replaceState(null, '', filtersHash(filters));
    stream?.close();
    stream = null;
    void load();
  }
  stateSel.addEventListener('change', () => {
    filters.state = stateSel.value;
    applyFilters();
  });
  planSel.addEventListener('change', () => {
    filters.plan = planSel.value;
    applyFilters();
  });
  clearBtn.addEventListener('click', () => {
    filters.state = '';
    filters.plan = '';
    stateSel.value = '';
    planSel.value = '';
    applyFilters();
  });
  filterForm.addEventListener('submit', (e) => e.preventDefault());
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      await loadPage(nextCursor);
      renderRows();
    } catch (err) {
      errorBox.textContent = explain(err);
      errorBox.hidden = false;
    } finally {
      more.disabled = false;
    }
  });

  // ---- new deployment --------------------------------------------------------------------------
  function openCreate() {
    newBtn.setAttribute('aria-expanded', 'true');
    createBox.hidden = false;
    setChildren(createBox, createForm({ plans, plan: filters.plan, onClose: closeCreate }));
    createBox.querySelector('input')?.focus();
  }
  function closeCreate() {
    newBtn.setAttribute('aria-expanded', 'false');
    createBox.hidden = true;
    createBox.replaceChildren();
    newBtn.focus();
  }
  newBtn.addEventListener('click', () => (createBox.hidden ? openCreate() : closeCreate()));

  function applyRole() {
    newBtn.hidden = !can('operator');
    if (newBtn.hidden && !createBox.hidden) closeCreate();
    renderCount();
    void webhooks.onRole();
  }
  applyRole();
  void load();

  return {
    title: 'Deployments',
    onRole: applyRole,
    destroy() {
      destroyed = true;
      clearInterval(retryTicker);
      stream?.close();
      webhooks.destroy();
      for (const t of refreshTimers.values()) clearTimeout(t);
    },
  };
}
