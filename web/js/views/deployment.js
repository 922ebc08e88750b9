// One deployment's page: lays out the cards (header with actions, state timeline, log, attempts, params and
// labels), reads the deployment once, then feeds its event stream through the reducer and shows what
// changed. The stream starts where the reads ended, so the page never reloads and never misses a change.
import { api, explain, ApiError } from '../api.js';
import { announce, h, nextId, setChildren, toast } from '../dom.js';
import { openStream } from '../sse.js';
import { getPlans, setConn } from '../shell.js';
import { timelineBar, transitionList } from '../timeline.js';
import { actionsRow } from './deployment/actions.js';
import { attemptsTable } from './deployment/attempts-table.js';
import {
  cancelDialog,
  deleteDialog,
  deployDialog,
  resolveDialog,
  rollbackDialog,
  runCheck,
  teardownDialog,
} from './deployment/dialogs.js';
import { deploymentHead } from './deployment/head.js';
import { logPanel } from './deployment/log-panel.js';
import { outputsPanel } from './deployment/outputs-panel.js';
import { gatesPanel, waitingAttempt } from './deployment/gates-panel.js';
import { phasesPanel } from './deployment/phases-panel.js';
import {
  applyEvent,
  applyRefresh,
  askedCheck,
  initialModel,
  markDeleted,
  streamStart,
} from './deployment/reducer.js';

const STREAM_TYPES =
  'state_transition,log_line,runner_event,attempt_start,attempt_end,check_result,deployment_deleted,retry_scheduled,retry_cancelled,retry_exhausted,outputs_changed,drift_detected,drift_cleared,gate_waiting,gate_opened,approval_granted';

export function mountDeployment(root, { ref }) {
  let model = { dep: null, transitions: [], attempts: [], lastSeq: 0, deleted: false };
  let plan = null;
  let stream = null;
  let destroyed = false;
  let refreshTimer = null;
  let ticker = null;
  const get = () => model;

  // ---- skeleton --------------------------------------------------------------------------------
  const titleId = nextId('dep-title');
  const actions = actionsRow({
    deploy: () => deployDialog(get),
    rollback: () => rollbackDialog(get),
    teardown: () => teardownDialog(get),
    cancel: () => cancelDialog(get),
    check: () => void runCheck(get, (asked) => (model = askedCheck(model, asked))),
    resolve: () => resolveDialog(get),
    delete: () => deleteDialog(get),
  });
  const head = deploymentHead({ ref, titleId, actionsRow: actions.el });
  const attempts = attemptsTable({ onShow: (a) => log.pin(a) });
  const log = logPanel({ get, onShownChange: () => renderAttempts() });
  const phases = phasesPanel();
  const outputs = outputsPanel();
  const gates = gatesPanel({ onDecided: () => scheduleRefresh() });
  const timelineBox = h('div', { class: 'timeline-box' });
  const transitionsBox = h('div', { class: 'transitions-box' });
  const configBox = h('div', { class: 'config-box' });
  const status = h('div', { class: 'callout callout-error', role: 'alert', hidden: true });
  const crumb = h('span', { 'aria-current': 'page' }, ref);

  setChildren(
    root,
    h(
      'section',
      { class: 'page', 'aria-labelledby': titleId },
      h(
        'nav',
        { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        h('a', { href: '#/' }, 'Deployments'),
        h('span', { 'aria-hidden': 'true' }, ' / '),
        crumb,
      ),
      status,
      head.el,
      gates.el,
      outputs.el,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'timeline-title' },
        h('div', { class: 'card-head' }, h('h2', { id: 'timeline-title' }, 'State timeline')),
        timelineBox,
        h('details', { class: 'transitions-details' }, h('summary', null, 'Transitions'), transitionsBox),
      ),
      log.el,
      phases.el,
      attempts.el,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'config-title' },
        h('div', { class: 'card-head' }, h('h2', { id: 'config-title' }, 'Params and labels')),
        configBox,
      ),
    ),
  );

  // ---- rendering -------------------------------------------------------------------------------
  const renderHead = () => {
    head.render(model, plan);
    outputs.render(model.dep);
  };
  const renderActions = () => actions.render(model, plan);
  const renderAttempts = () => {
    attempts.render(model.attempts, log.shownAttempt());
    gates.render(model);
    // The phases of the attempt the log shows, read again whenever the attempts change.
    void phases.load(model.attempts.find((a) => a.id === log.shownAttempt()) ?? null);
  };

  function renderTimeline() {
    const now = Date.now();
    setChildren(timelineBox, timelineBar(model.transitions, now));
    setChildren(transitionsBox, transitionList(model.transitions, now));
  }

  function renderConfig() {
    const params = model.dep.params ?? {};
    const labels = model.dep.labels ?? {};
    setChildren(
      configBox,
      h(
        'div',
        { class: 'config-grid' },
        h(
          'div',
          null,
          h('h3', null, 'Params'),
          Object.keys(params).length
            ? h('pre', { class: 'json' }, JSON.stringify(params, null, 2))
            : h('p', { class: 'muted' }, 'none'),
        ),
        h(
          'div',
          null,
          h('h3', null, 'Labels'),
          Object.keys(labels).length
            ? h(
                'p',
                { class: 'labels' },
                Object.entries(labels).map(([k, v]) => h('span', { class: 'label-chip' }, `${k}=${v}`)),
              )
            : h('p', { class: 'muted' }, 'none'),
        ),
      ),
    );
  }

  function renderAll() {
    document.title = `${model.dep.name} · Lifeline`;
    crumb.textContent = model.dep.name;
    renderHead();
    renderActions();
    renderTimeline();
    renderAttempts();
    renderConfig();
    log.renderTitle();
  }

  /** Shows what a reducer step changed, in the order the page always drew it. */
  function show(changes) {
    if (changes.followAttempt) log.followNew(changes.followAttempt);
    if (changes.attempts) renderAttempts();
    if (changes.head) renderHead();
    else if (changes.callouts) head.renderCallouts(model, plan);
    if (changes.actions) renderActions();
    if (changes.timeline) renderTimeline();
    if (changes.logTitle) log.renderTitle();
    if (changes.toast) toast(changes.toast.text, { kind: changes.toast.kind });
    if (changes.announce) announce(changes.announce);
    if (changes.refresh) scheduleRefresh();
  }

  function step({ model: next, changes }) {
    model = next;
    show(changes);
  }

  // ---- live updates ----------------------------------------------------------------------------
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 250);
  }

  async function refresh() {
    if (destroyed || model.deleted || !model.dep) return;
    try {
      const [d, at] = await Promise.all([
        api.deployment(model.dep.id),
        api.attempts(model.dep.id, { limit: 50 }),
      ]);
      if (destroyed) return;
      model = applyRefresh(model, d, at.items);
      renderHead();
      renderActions();
      renderAttempts();
      log.renderTitle();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) step(markDeleted(model));
    }
  }

  function onEvent(ev) {
    if (destroyed) return;
    if (ev.type === 'log_line') log.onLine(ev);
    else if (ev.type === 'runner_event') phases.onEvent(ev);
    else step(applyEvent(model, ev));
  }

  let tick = 0;
  function startTicker() {
    ticker = setInterval(() => {
      if (document.hidden || !model.dep) return;
      renderTimeline();
      attempts.tick(model.attempts);
      phases.tick();
      head.tickRetry();
      // A queue position moves when attempts of other deployments leave: those are not in this stream.
      tick += 1;
      if (tick % 3 === 0 && waitingAttempt(model)?.waiting.some((w) => w.gate === 'concurrency'))
        scheduleRefresh();
    }, 1000);
  }

  // ---- start -----------------------------------------------------------------------------------
  function showNotFound() {
    setChildren(
      root,
      h(
        'section',
        { class: 'page' },
        h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Deployments')),
        h(
          'div',
          { class: 'card empty' },
          h('h1', null, 'Not found'),
          h('p', null, `There is no deployment named ${ref}.`),
          h('p', null, h('a', { href: '#/' }, 'Back to all deployments')),
        ),
      ),
    );
  }

  async function load() {
    try {
      const [d, tr, at, plans] = await Promise.all([
        api.deployment(ref),
        api.transitions(ref),
        api.attempts(ref, { limit: 50 }),
        getPlans(),
      ]);
      if (destroyed) return;
      model = initialModel({ deployment: d, transitions: tr.items, attempts: at.items });
      plan = plans.get(d.plan) ?? null;
      renderAll();
      const { after, logAttempt, logMode } = streamStart(model);
      void log.show(logAttempt, logMode);
      stream = openStream({
        path: `/v1/deployments/${encodeURIComponent(model.dep.id)}/events/stream`,
        params: { after, type: STREAM_TYPES },
        onEvent,
        onStatus: (s) => {
          if (destroyed) return;
          setConn(s);
          if (s === 'gone') step(markDeleted(model));
        },
      });
      startTicker();
    } catch (err) {
      if (destroyed) return;
      if (err instanceof ApiError && err.status === 404) {
        showNotFound();
        return;
      }
      status.textContent = `Could not load ${ref}: ${explain(err)}`;
      status.hidden = false;
    }
  }
  void load();

  return {
    title: ref,
    onRole() {
      if (!model.dep) return;
      renderActions();
      renderAttempts();
      head.renderCallouts(model, plan);
    },
    destroy() {
      destroyed = true;
      stream?.close();
      clearTimeout(refreshTimer);
      log.close();
      phases.close();
      clearInterval(ticker);
    },
  };
}
