// The deployments list: newest first, filters by state and plan, state badges that follow the event stream,
// and (for operators) the form that creates a deployment.
import { api, can, explain, headSeq } from '../api.js';
import { attemptBadge, stateBadge, updateBadge } from '../badges.js';
import { announce, h, nextId, setChildren } from '../dom.js';
import { relTime } from '../format.js';
import { paramsEditor } from '../params-form.js';
import { openStream } from '../sse.js';
import { deploymentHref, getPlans, navigate, setConn } from '../shell.js';
import { DEPLOYMENT_STATES, stateLabel } from '../states.js';

const PAGE = 100;
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function mountList(root, { params }) {
  const filters = { state: params.get('state') ?? '', plan: params.get('plan') ?? '' };
  if (!DEPLOYMENT_STATES.includes(filters.state)) filters.state = '';
  const rows = new Map(); // id -> deployment
  const trs = new Map(); // id -> <tr>
  const refreshTimers = new Map();
  let stream = null;
  let destroyed = false;
  let nextCursor = null;
  let plans = new Map();

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
    ),
  );
  head.querySelector('h1').id = 'list-title';

  const matches = (d) =>
    (!filters.state || d.state === filters.state) && (!filters.plan || d.plan === filters.plan);

  // ---- rows ------------------------------------------------------------------------------------
  function attemptCell(d) {
    const a = d.current_attempt;
    if (!a) return h('span', { class: 'muted' }, '—');
    return h(
      'span',
      { class: 'attempt-cell' },
      h('span', { class: 'attempt-no' }, a.number ? `#${a.number}` : '#…'),
      h('span', { class: 'muted' }, a.kind),
      attemptBadge(a.state),
    );
  }

  function buildRow(d) {
    const tr = h(
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
      h('td', { class: 'cell-state', dataset: { label: 'State' } }, stateBadge(d.state)),
      h('td', { class: 'cell-attempt', dataset: { label: 'Attempt' } }, attemptCell(d)),
      h('td', { class: 'cell-updated', dataset: { label: 'Updated' } }, relTime(d.updated_at)),
    );
    return tr;
  }

  function updateRow(d) {
    const tr = trs.get(d.id);
    if (!tr) return;
    updateBadge(tr.querySelector('.cell-state .badge'), d.state);
    setChildren(tr.querySelector('.cell-attempt'), attemptCell(d));
    setChildren(tr.querySelector('.cell-updated'), relTime(d.updated_at));
    tr.hidden = !matches(d);
  }

  /** Rows in creation order, newest first; rows that no longer match the filters are hidden, not dropped. */
  function renderRows() {
    const sorted = [...rows.values()].sort((a, b) =>
      a.created_at === b.created_at ? (a.id < b.id ? 1 : -1) : a.created_at < b.created_at ? 1 : -1,
    );
    const frag = document.createDocumentFragment();
    for (const d of sorted) {
      let tr = trs.get(d.id);
      if (!tr) {
        tr = buildRow(d);
        trs.set(d.id, tr);
      }
      tr.hidden = !matches(d);
      frag.appendChild(tr);
    }
    for (const [id, tr] of trs) if (!rows.has(id)) (tr.remove(), trs.delete(id));
    tbody.replaceChildren(frag);
    renderCount();
  }

  function renderCount() {
    const shown = [...rows.values()].filter(matches).length;
    count.textContent = `${shown}${nextCursor ? '+' : ''} ${shown === 1 ? 'deployment' : 'deployments'}`;
    const filtered = filters.state || filters.plan;
    empty.hidden = shown > 0;
    table.hidden = shown === 0;
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
  function startStream(after) {
    stream?.close();
    stream = openStream({
      path: '/v1/events/stream',
      params: { after, type: 'state_transition,deployment_created,deployment_deleted' },
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
          const have = rows.get(id);
          if (have && have.version > d.version) return;
          const isNew = !have;
          if (isNew && !matches(d)) return;
          rows.set(id, d);
          if (isNew) renderRows();
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
    if (!id) return;
    if (ev.type === 'deployment_created') {
      if (!rows.has(id) && (!filters.plan || ev.data?.plan === filters.plan)) scheduleRefresh(id);
      return;
    }
    if (ev.type === 'deployment_deleted') {
      if (rows.delete(id)) renderRows();
      return;
    }
    if (ev.type !== 'state_transition') return;
    const d = rows.get(id);
    const data = ev.data ?? {};
    if (data.entity === 'attempt') {
      if (d?.current_attempt?.id === ev.attempt_id) {
        d.current_attempt = { ...d.current_attempt, state: data.to };
        updateRow(d);
      }
      return;
    }
    if (!d) {
      // Not loaded (filtered out, or beyond the first page): fetch it if it now matches.
      if (!filters.state || data.to === filters.state) scheduleRefresh(id);
      return;
    }
    if (typeof data.version === 'number' && data.version <= d.version) return; // already shown
    d.state = data.to;
    d.version = data.version ?? d.version;
    d.state_changed_at = ev.at;
    d.updated_at = ev.at;
    if (ev.attempt_id && ev.attempt_id !== d.current_attempt?.id) {
      d.current_attempt = {
        id: ev.attempt_id,
        number: null,
        kind: data.to === 'tearing_down' ? 'teardown' : 'deploy',
        state: 'queued',
      };
    }
    updateRow(d);
    if (matches(d)) announce(`${d.name} is now ${stateLabel(d.state)}`);
    scheduleRefresh(id); // attempt number and the rest, from the API
  }

  // ---- filters ---------------------------------------------------------------------------------
  function applyFilters() {
    const q = new URLSearchParams();
    if (filters.state) q.set('state', filters.state);
    if (filters.plan) q.set('plan', filters.plan);
    const qs = q.toString();
    history.replaceState(null, '', `#/${qs ? `?${qs}` : ''}`);
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
    setChildren(createBox, createForm());
    createBox.querySelector('input')?.focus();
  }
  function closeCreate() {
    newBtn.setAttribute('aria-expanded', 'false');
    createBox.hidden = true;
    createBox.replaceChildren();
    newBtn.focus();
  }
  newBtn.addEventListener('click', () => (createBox.hidden ? openCreate() : closeCreate()));

  function createForm() {
    const nameId = nextId('new-name');
    const planId = nextId('new-plan');
    const labelsId = nextId('new-labels');
    const nameErr = h('p', { class: 'field-error', id: nextId('err'), hidden: true });
    const nameHelp = h(
      'p',
      { class: 'help', id: nextId('help') },
      'Lowercase letters, digits and dashes; up to 63.',
    );
    const name = h('input', {
      id: nameId,
      name: 'name',
      required: true,
      autocomplete: 'off',
      spellcheck: 'false',
      maxlength: 63,
      pattern: '[a-z0-9][a-z0-9\\-]{0,62}',
      'aria-describedby': `${nameHelp.id} ${nameErr.id}`,
    });
    const planNames = [...plans.keys()].sort();
    const plan = h(
      'select',
      { id: planId, name: 'plan', required: true },
      planNames.map((n) => h('option', { value: n, selected: n === filters.plan }, n)),
    );
    const planDesc = h('p', { class: 'help', id: nextId('help') });
    plan.setAttribute('aria-describedby', planDesc.id);
    const paramsBox = h('div', { class: 'params-box' });
    let editor = null;
    const showPlan = () => {
      const p = plans.get(plan.value);
      planDesc.textContent = p?.description || (p ? 'No description.' : '');
      editor = paramsEditor(p?.params_schema ?? {});
      setChildren(paramsBox, editor.el);
    };
    plan.addEventListener('change', showPlan);
    const labelsHelp = h(
      'p',
      { class: 'help', id: nextId('help') },
      'Optional: key=value, separated by commas.',
    );
    const labels = h('input', {
      id: labelsId,
      name: 'labels',
      autocomplete: 'off',
      placeholder: 'team=web, env=staging',
      'aria-describedby': labelsHelp.id,
    });
    const deployNow = h('input', {
      type: 'checkbox',
      id: nextId('deploy-now'),
      name: 'deploy',
      checked: true,
    });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create');
    const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
    cancel.addEventListener('click', closeCreate);

    const form = h(
      'form',
      { class: 'card create-form', novalidate: true, 'aria-labelledby': 'create-title' },
      h('h2', { id: 'create-title' }, 'New deployment'),
      planNames.length === 0
        ? h('p', { class: 'callout' }, 'The server has no plans configured; add one to its config file.')
        : null,
      h(
        'div',
        { class: 'form-grid' },
        h('div', { class: 'field' }, h('label', { for: nameId }, 'Name'), name, nameHelp, nameErr),
        h('div', { class: 'field' }, h('label', { for: planId }, 'Plan'), plan, planDesc),
      ),
      h('fieldset', { class: 'params-set' }, h('legend', null, 'Params'), paramsBox),
      h('div', { class: 'field' }, h('label', { for: labelsId }, 'Labels'), labels, labelsHelp),
      h(
        'div',
        { class: 'field field-check' },
        deployNow,
        h('label', { for: deployNow.id }, 'Start a deploy attempt right away'),
      ),
      error,
      h('div', { class: 'form-actions' }, submit, cancel),
    );
    showPlan();

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      nameErr.hidden = true;
      name.removeAttribute('aria-invalid');
      const n = name.value.trim();
      if (!NAME_RE.test(n)) {
        nameErr.textContent = 'Use lowercase letters, digits and dashes, starting with a letter or digit.';
        nameErr.hidden = false;
        name.setAttribute('aria-invalid', 'true');
        name.focus();
        return;
      }
      let params;
      let labelObj;
      try {
        params = editor.read();
        labelObj = parseLabels(labels.value);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
        return;
      }
      submit.disabled = true;
      submit.setAttribute('aria-busy', 'true');
      try {
        const body = { name: n, plan: plan.value, params };
        if (labelObj) body.labels = labelObj;
        const dep = await api.create(body);
        if (deployNow.checked) await api.deploy(dep.id, {});
        announce(`Created ${dep.name}${deployNow.checked ? '; deploying' : ''}`);
        navigate(deploymentHref(dep.name));
      } catch (err) {
        error.textContent = explain(err);
        error.hidden = false;
        editor.setErrors(err.errors);
        const nameProblem = (err.errors ?? []).find((x) => x.field === 'name');
        if (err.code === 'DEPLOYMENT_EXISTS' || nameProblem) {
          nameErr.textContent = nameProblem?.reason ?? `A deployment named ${n} exists already.`;
          nameErr.hidden = false;
          name.setAttribute('aria-invalid', 'true');
        }
      } finally {
        submit.disabled = false;
        submit.removeAttribute('aria-busy');
      }
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') closeCreate();
    });
    return form;
  }

  function applyRole() {
    newBtn.hidden = !can('operator');
    if (newBtn.hidden && !createBox.hidden) closeCreate();
    renderCount();
  }
  applyRole();
  void load();

  return {
    title: 'Deployments',
    onRole: applyRole,
    destroy() {
      destroyed = true;
      stream?.close();
      for (const t of refreshTimers.values()) clearTimeout(t);
    },
  };
}

/** "a=b, c=d" into {a: "b", c: "d"}; empty gives undefined. */
function parseLabels(text) {
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
