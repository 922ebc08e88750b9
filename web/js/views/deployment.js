// One deployment: its state, a timeline of its states, its attempts, the live log of the current attempt, and
// the actions the token's role allows. Everything after the first read comes from the deployment's event
// stream, which starts where the reads ended, so the page never reloads and never misses a change.
import { api, can, explain, ApiError } from '../api.js';
import { ACTIVE_STATES, attemptBadge, stateBadge, stateLabel, updateBadge } from '../badges.js';
import { openDialog } from '../dialog.js';
import { announce, h, nextId, setChildren, toast } from '../dom.js';
import { absolute, duration, relTime } from '../format.js';
import { openStream } from '../sse.js';
import { getPlans, navigate, setConn } from '../shell.js';
import { timelineBar, transitionList } from '../timeline.js';

const MAX_LOG_LINES = 5000;
const STREAM_TYPES = 'state_transition,log_line,attempt_start,attempt_end,check_result,deployment_deleted';
const REASON_TEXT = {
  exit_nonzero: 'the plan exited with a non-zero code',
  timeout: 'the plan ran past its timeout',
  cancelled: 'it was cancelled',
  runner_error: 'the plan could not be started',
  exit_unobserved: 'its process is gone and no exit record was found',
  runner_lost: 'the instance running it stopped renewing its lease',
  start_interrupted: 'it never started before its deadline',
  late_result: 'its exit record turned up late',
};

export function mountDeployment(root, { ref }) {
  let dep = null;
  let plan = null;
  let transitions = [];
  let attempts = [];
  let lastSeq = 0;
  let stream = null;
  let destroyed = false;
  let deleted = false;
  let refreshTimer = null;
  let ticker = null;
  const log = {
    attemptId: null,
    mode: 'events', // 'events': lines come from the stream; 'fetch': the stream only says "there is more"
    ready: false,
    skip: 0,
    queue: [],
    nextOffset: 0,
    fetching: false,
    dirty: false,
    pinned: false,
    dropped: 0,
  };

  // ---- skeleton --------------------------------------------------------------------------------
  const titleId = nextId('dep-title');
  const nameEl = h('h1', { id: titleId, class: 'dep-name' }, ref);
  const badgeBox = h('span', { class: 'dep-badge' });
  const meta = h('dl', { class: 'meta' });
  const callouts = h('div', { class: 'callouts' });
  const actions = h('div', {
    class: 'actions',
    role: 'group',
    'aria-label': 'Actions',
    'data-testid': 'actions',
  });
  const actionHint = h('p', { class: 'action-hint muted', hidden: true });
  const timelineBox = h('div', { class: 'timeline-box' });
  const transitionsBox = h('div', { class: 'transitions-box' });
  const attemptsBody = h('tbody');
  const attemptsTable = h(
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
    attemptsBody,
  );
  const attemptsEmpty = h('p', { class: 'muted empty-inline', hidden: true }, 'No attempts yet.');
  const logTitle = h('span', { class: 'log-attempt muted' });
  const follow = h('input', { type: 'checkbox', id: nextId('follow'), checked: true });
  const backToCurrent = h(
    'button',
    { type: 'button', class: 'btn btn-link btn-sm', hidden: true },
    'Show current attempt',
  );
  const logNote = h('p', { class: 'log-note muted', hidden: true });
  const pre = h('pre', {
    class: 'log',
    role: 'log',
    'aria-live': 'polite',
    'aria-relevant': 'additions',
    'aria-label': 'Attempt output',
    tabindex: '0',
    'data-testid': 'log',
  });
  const logEmpty = h('p', { class: 'log-empty muted' }, 'No output yet.');
  const status = h('div', { class: 'callout callout-error', role: 'alert', hidden: true });

  const page = h(
    'section',
    { class: 'page', 'aria-labelledby': titleId },
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: '#/' }, 'Deployments'),
      h('span', { 'aria-hidden': 'true' }, ' / '),
      h('span', { 'aria-current': 'page' }, ref),
    ),
    status,
    h(
      'header',
      { class: 'dep-head card' },
      h('div', { class: 'dep-title-row' }, nameEl, badgeBox),
      meta,
      callouts,
      h('div', { class: 'actions-row' }, actions, actionHint),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'timeline-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'timeline-title' }, 'State timeline')),
      timelineBox,
      h('details', { class: 'transitions-details' }, h('summary', null, 'Transitions'), transitionsBox),
    ),
    h(
      'section',
      { class: 'card log-card', 'aria-labelledby': 'log-title' },
      h(
        'div',
        { class: 'card-head' },
        h('h2', { id: 'log-title' }, 'Log ', logTitle),
        h(
          'div',
          { class: 'card-tools' },
          backToCurrent,
          h('span', { class: 'check-inline' }, follow, h('label', { for: follow.id }, 'Follow')),
        ),
      ),
      logNote,
      h('div', { class: 'log-wrap' }, pre, logEmpty),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'attempts-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'attempts-title' }, 'Attempts')),
      h('div', { class: 'table-wrap' }, attemptsTable),
      attemptsEmpty,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'config-title' },
      h('div', { class: 'card-head' }, h('h2', { id: 'config-title' }, 'Params and labels')),
      h('div', { class: 'config-box' }),
    ),
  );
  setChildren(root, page);
  const configBox = page.querySelector('.config-box');

  // ---- rendering -------------------------------------------------------------------------------
  const current = () => dep?.current_attempt ?? null;
  const attemptOf = (id) => attempts.find((a) => a.id === id);
  const isActive = () => dep && ACTIVE_STATES.has(dep.state);

  function renderHead() {
    nameEl.textContent = dep.name;
    const badge = badgeBox.querySelector('.badge');
    if (badge) updateBadge(badge, dep.state);
    else setChildren(badgeBox, stateBadge(dep.state, { large: true }));
    const cur = current();
    const item = (term, ...desc) =>
      h('div', { class: 'meta-item' }, h('dt', null, term), h('dd', null, ...desc));
    setChildren(
      meta,
      item(
        'Plan',
        h('span', { class: 'plan-name' }, dep.plan),
        plan?.description ? h('span', { class: 'muted' }, ` — ${plan.description}`) : null,
      ),
      item(
        'Current attempt',
        cur
          ? h(
              'span',
              { class: 'attempt-cell' },
              h('span', { class: 'attempt-no' }, cur.number ? `#${cur.number}` : '#…'),
              h('span', { class: 'muted' }, cur.kind),
              attemptBadge(cur.state),
            )
          : h('span', { class: 'muted' }, 'none'),
      ),
      item('In this state since', relTime(dep.state_changed_at)),
      item('Created', relTime(dep.created_at)),
      item('Id', h('code', { class: 'id' }, dep.id)),
    );
    renderCallouts();
  }

  function renderCallouts() {
    const items = [];
    if (deleted) {
      items.push(
        h(
          'div',
          { class: 'callout' },
          h('strong', null, 'Deleted. '),
          'This deployment was deleted; its history stays readable here.',
        ),
      );
    } else if (dep.state === 'unknown') {
      const cur = current();
      const a = cur ? attemptOf(cur.id) : null;
      const why = a?.reason ? (REASON_TEXT[a.reason] ?? a.reason) : 'its outcome was lost';
      items.push(
        h(
          'div',
          { class: 'callout callout-warn', 'data-testid': 'unknown-callout' },
          h('strong', null, 'Outcome unknown. '),
          `Attempt ${cur?.number ? `#${cur.number} ` : ''}(${cur?.kind ?? 'deploy'}) ended without a known result: ${why}. `,
          'Lifeline refuses teardown and new deploys until someone says what happened: ',
          can('admin') ? 'resolve it' : 'an admin resolves it',
          plan?.has_check ? ', or run the plan’s check' : '',
          '.',
        ),
      );
    }
    setChildren(callouts, items);
  }

  function actionButton(id, label, { kind = '', disabledWhy = null, onClick }) {
    const reasonId = disabledWhy ? nextId('why') : null;
    const btn = h(
      'button',
      {
        type: 'button',
        class: ['btn', kind && `btn-${kind}`],
        'data-action': id,
        'aria-disabled': disabledWhy ? 'true' : null,
        'aria-describedby': reasonId,
        title: disabledWhy,
      },
      label,
    );
    btn.addEventListener('click', () => {
      if (btn.getAttribute('aria-disabled') === 'true') {
        toast(disabledWhy);
        return;
      }
      onClick();
    });
    return [btn, reasonId ? h('span', { id: reasonId, class: 'visually-hidden' }, disabledWhy) : null];
  }

  let actionsSignature = null;
  function renderActions() {
    const list = [];
    if (!deleted && dep) {
      const active = isActive();
      const unknown = dep.state === 'unknown';
      const busy = active ? 'An attempt is in progress; wait for it or cancel it.' : null;
      const unknownBlock =
        unknown && !can('admin') ? 'The state is unknown: resolve it or run a check first.' : null;
      if (can('operator')) {
        list.push(
          actionButton('deploy', 'Deploy', {
            kind: 'primary',
            disabledWhy: busy ?? unknownBlock,
            onClick: deployDialog,
          }),
        );
        list.push(
          actionButton('teardown', 'Tear down', {
            kind: 'danger-outline',
            disabledWhy: busy ?? (dep.state === 'torn_down' ? 'Already torn down.' : unknownBlock),
            onClick: teardownDialog,
          }),
        );
        list.push(
          actionButton('cancel', 'Cancel attempt', {
            disabledWhy: active ? null : 'No attempt is in progress.',
            onClick: cancelDialog,
          }),
        );
        if (plan?.has_check) {
          list.push(actionButton('check', 'Run check', { disabledWhy: busy, onClick: runCheck }));
        }
      }
      if (can('admin')) {
        list.push(
          actionButton('resolve', 'Resolve…', {
            kind: unknown ? 'warn' : '',
            disabledWhy: unknown ? null : 'Only an unknown state needs resolving.',
            onClick: resolveDialog,
          }),
        );
        list.push(actionButton('delete', 'Delete…', { disabledWhy: busy, onClick: deleteDialog }));
      }
    }
    // Re-render only when something changed, and keep the focus on the same action when it did: events
    // arrive at any time, and a keyboard user must not lose their place.
    const signature = JSON.stringify(
      list.map(([btn]) => [btn.dataset.action, btn.textContent, btn.getAttribute('title'), btn.className]),
    );
    if (signature !== actionsSignature) {
      actionsSignature = signature;
      const focused = actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      setChildren(actions, list);
      if (focused) actions.querySelector(`[data-action="${focused}"]`)?.focus();
    }
    actions.hidden = list.length === 0;
    if (list.length === 0 && dep && !deleted) {
      actionHint.hidden = false;
      actionHint.textContent = 'Read only: your token’s role cannot change deployments.';
    } else if (isActive() && list.length > 0) {
      const cur = current();
      actionHint.hidden = false;
      actionHint.textContent = `Attempt ${cur?.number ? `#${cur.number} ` : ''}is in progress; deploy, teardown and delete wait until it ends.`;
    } else actionHint.hidden = true;
  }

  function renderTimeline() {
    const now = Date.now();
    setChildren(timelineBox, timelineBar(transitions, now));
    setChildren(transitionsBox, transitionList(transitions, now));
  }

  function tookText(a) {
    if (!a.started_at) return a.state === 'queued' ? 'waiting' : '—';
    const end = a.ended_at ? Date.parse(a.ended_at) : Date.now();
    return a.ended_at
      ? duration(end - Date.parse(a.started_at))
      : `${duration(end - Date.parse(a.started_at))}…`;
  }

  function resultText(a) {
    const bits = [];
    if (a.rc !== null && a.rc !== undefined) bits.push(`rc ${a.rc}`);
    if (a.reason) bits.push(a.reason.replaceAll('_', ' '));
    if (a.recovered) bits.push('recovered');
    if (a.force) bits.push('forced');
    return bits.length ? bits.join(' · ') : a.state === 'succeeded' ? 'ok' : '—';
  }

  function renderAttempts() {
    attemptsEmpty.hidden = attempts.length > 0;
    attemptsTable.hidden = attempts.length === 0;
    const focused = attemptsBody.contains(document.activeElement)
      ? document.activeElement.closest('tr')?.dataset.attempt
      : null;
    setChildren(
      attemptsBody,
      attempts.map((a) => {
        const shown = a.id === log.attemptId;
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
        btn.addEventListener('click', () => pinLog(a));
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
      }),
    );
    if (focused) attemptsBody.querySelector(`tr[data-attempt="${focused}"] button`)?.focus();
  }

  function renderConfig() {
    const params = dep.params ?? {};
    const labels = dep.labels ?? {};
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
    document.title = `${dep.name} · Lifeline`;
    page.querySelector('[aria-current="page"]').textContent = dep.name;
    renderHead();
    renderActions();
    renderTimeline();
    renderAttempts();
    renderConfig();
    renderLogTitle();
  }

  // ---- the log ---------------------------------------------------------------------------------
  function renderLogTitle() {
    const a = attemptOf(log.attemptId);
    const cur = current();
    const number = a?.number ?? (cur?.id === log.attemptId ? cur.number : null);
    const kind = a?.kind ?? (cur?.id === log.attemptId ? cur.kind : null);
    const state = a?.state ?? (cur?.id === log.attemptId ? cur.state : null);
    logTitle.textContent = log.attemptId
      ? `· attempt ${number ? `#${number}` : ''} ${kind ?? ''}${state ? ` · ${state}` : ''}`
      : '';
    pre.setAttribute(
      'aria-label',
      log.attemptId ? `Output of attempt ${number ? `#${number}` : ''}` : 'Attempt output',
    );
    backToCurrent.hidden = !(log.pinned && cur && cur.id !== log.attemptId);
    logEmpty.textContent = log.attemptId
      ? 'No output yet.'
      : 'No attempts yet. Deploy to see the output here.';
  }

  function resetLog(attemptId, mode) {
    Object.assign(log, {
      attemptId,
      mode,
      ready: false,
      skip: 0,
      queue: [],
      nextOffset: 0,
      fetching: false,
      dirty: false,
      dropped: 0,
    });
    pre.replaceChildren();
    logEmpty.hidden = false;
    logNote.hidden = true;
    renderLogTitle();
  }

  let pendingLines = [];
  let flushTimer = null;
  function appendLines(lines) {
    if (lines.length === 0) return;
    pendingLines.push(...lines);
    if (!flushTimer) flushTimer = setTimeout(flushLines, 40);
  }
  function flushLines() {
    flushTimer = null;
    if (destroyed || pendingLines.length === 0) return;
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 32;
    const frag = document.createDocumentFragment();
    for (const line of pendingLines) frag.appendChild(document.createTextNode(`${line}\n`));
    pendingLines = [];
    pre.appendChild(frag);
    const extra = pre.childNodes.length - MAX_LOG_LINES;
    if (extra > 0) {
      for (let i = 0; i < extra; i++) pre.firstChild.remove();
      log.dropped += extra;
      logNote.hidden = false;
      logNote.textContent = `Showing the last ${MAX_LOG_LINES} lines; ${log.dropped} earlier lines are not shown (lifeline logs NAME has them all).`;
    }
    logEmpty.hidden = pre.childNodes.length > 0;
    if (follow.checked && atBottom) pre.scrollTop = pre.scrollHeight;
  }

  const splitLines = (text) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));

  /**
   * Shows an attempt's output. GET /v1/attempts/{id}/log first. In 'events' mode the stream replays every
   * log_line of the attempt (it started before the attempt's first line), and the log text is exactly the
   * first N of them, so the first N from the stream are skipped. In 'fetch' mode a log_line only says that
   * there is more, which is read from the byte offset the last read ended at.
   */
  async function showLog(attemptId, mode) {
    resetLog(attemptId, mode);
    if (!attemptId) return;
    log.fetching = true;
    try {
      const { text, nextOffset } = await api.attemptLog(attemptId, 0);
      if (destroyed || log.attemptId !== attemptId) return;
      const lines = splitLines(text);
      appendLines(lines);
      log.nextOffset = nextOffset;
      if (mode === 'events') {
        log.skip = lines.length;
        const queued = log.queue;
        log.queue = [];
        for (const t of queued) takeLine(t);
      }
      log.ready = true;
    } catch (err) {
      if (log.attemptId === attemptId) {
        logNote.hidden = false;
        logNote.textContent = `Could not read the output: ${explain(err)}`;
      }
    } finally {
      if (log.attemptId === attemptId) {
        log.fetching = false;
        if (log.dirty) void readMore();
      }
    }
  }

  function takeLine(text) {
    if (log.skip > 0) log.skip -= 1;
    else appendLines([text]);
  }

  async function readMore() {
    if (log.fetching) {
      log.dirty = true;
      return;
    }
    const id = log.attemptId;
    log.fetching = true;
    log.dirty = false;
    try {
      const { text, nextOffset } = await api.attemptLog(id, log.nextOffset);
      if (log.attemptId !== id || destroyed) return;
      appendLines(splitLines(text));
      log.nextOffset = nextOffset;
    } catch {
      /* the next line tries again */
    } finally {
      if (log.attemptId === id) {
        log.fetching = false;
        if (log.dirty) setTimeout(readMore, 100);
      }
    }
  }

  function onLogLine(ev) {
    if (ev.attempt_id !== log.attemptId) return;
    const text = String(ev.data?.text ?? '');
    if (log.mode === 'events') {
      if (!log.ready) log.queue.push(text);
      else takeLine(text);
    } else if (log.ready && !log.fetching) void readMore();
    else log.dirty = true;
  }

  /** A new attempt began while the page is open: every one of its lines is still ahead in the stream. */
  function followNewAttempt(attemptId) {
    resetLog(attemptId, 'events');
    log.ready = true;
  }

  function pinLog(a) {
    const cur = current();
    log.pinned = !(cur && cur.id === a.id);
    void showLog(a.id, 'fetch');
    renderAttempts();
  }
  backToCurrent.addEventListener('click', () => {
    log.pinned = false;
    const cur = current();
    if (cur) void showLog(cur.id, 'fetch');
    renderAttempts();
  });

  // ---- live updates ----------------------------------------------------------------------------
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 250);
  }

  async function refresh() {
    if (destroyed || deleted || !dep) return;
    try {
      const [d, at] = await Promise.all([api.deployment(dep.id), api.attempts(dep.id, { limit: 50 })]);
      if (destroyed) return;
      if (d.version >= dep.version) dep = d;
      attempts = at.items;
      renderHead();
      renderActions();
      renderAttempts();
      renderLogTitle();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) markDeleted();
    }
  }

  function markDeleted() {
    if (deleted) return;
    deleted = true;
    renderCallouts();
    renderActions();
    announce(`${dep.name} was deleted`);
  }

  function onEvent(ev) {
    if (destroyed) return;
    const data = ev.data ?? {};
    switch (ev.type) {
      case 'state_transition':
        if (data.entity === 'deployment') onDeploymentTransition(ev, data);
        else {
          const a = attemptOf(ev.attempt_id);
          if (a) {
            a.state = data.to;
            if (data.reason) a.reason = data.reason;
          }
          const cur = current();
          if (cur && cur.id === ev.attempt_id) cur.state = data.to;
          renderAttempts();
          renderHead();
          renderLogTitle();
          scheduleRefresh();
        }
        break;
      case 'log_line':
        onLogLine(ev);
        break;
      case 'attempt_start':
      case 'attempt_end':
        scheduleRefresh();
        break;
      case 'check_result': {
        const verdict = data.verdict ?? 'done';
        toast(`Check of ${dep.name}: ${verdict} (rc ${data.rc ?? '?'})`, {
          kind: verdict === 'failed' ? 'error' : 'info',
        });
        scheduleRefresh();
        break;
      }
      case 'deployment_deleted':
        markDeleted();
        break;
      default:
    }
  }

  function onDeploymentTransition(ev, data) {
    if (ev.seq <= lastSeq) return; // in the transitions read already
    lastSeq = ev.seq;
    transitions.push({
      seq: ev.seq,
      at: ev.at,
      from: data.from ?? null,
      to: data.to,
      trigger: data.trigger,
      reason: data.reason ?? null,
      actor: data.actor,
      attempt_id: ev.attempt_id,
    });
    if (typeof data.version === 'number' && data.version > dep.version) {
      dep.state = data.to;
      dep.version = data.version;
      dep.state_changed_at = ev.at;
      dep.updated_at = ev.at;
    }
    if (ev.attempt_id && ACTIVE_STATES.has(data.to) && ev.attempt_id !== current()?.id) {
      dep.current_attempt = {
        id: ev.attempt_id,
        number: null,
        kind: data.to === 'tearing_down' ? 'teardown' : 'deploy',
        state: 'queued',
      };
      if (!log.pinned) followNewAttempt(ev.attempt_id);
    }
    renderHead();
    renderActions();
    renderTimeline();
    announce(`${dep.name} is now ${stateLabel(dep.state)}`);
    scheduleRefresh();
  }

  function startTicker() {
    ticker = setInterval(() => {
      if (document.hidden || !dep) return;
      renderTimeline();
      for (const td of attemptsBody.querySelectorAll('td.took')) {
        const n = Number(td.parentElement.dataset.attempt);
        const a = attempts.find((x) => x.number === n);
        if (a && !a.ended_at) td.textContent = tookText(a);
      }
    }, 1000);
  }

  // ---- actions ---------------------------------------------------------------------------------
  const attemptLabel = (a) => (a?.number ? `attempt #${a.number}` : 'the attempt');

  function forceBox(what) {
    const id = nextId('force');
    const box = h('input', { type: 'checkbox', id, name: 'force' });
    const el = h(
      'div',
      { class: 'field field-check force-field' },
      box,
      h('label', { for: id }, `Force: ${what} even though the outcome of the last attempt is unknown`),
    );
    return { el, box };
  }

  function deployDialog() {
    const needsForce = dep.state === 'unknown';
    const force = needsForce ? forceBox('deploy') : null;
    const paramsId = nextId('override');
    const paramsHelp = nextId('help');
    const params = h('textarea', {
      id: paramsId,
      class: 'mono',
      rows: 3,
      spellcheck: 'false',
      placeholder: '{}',
      'aria-describedby': paramsHelp,
    });
    openDialog({
      title: `Deploy ${dep.name}`,
      description: `Starts a deploy attempt with plan ${dep.plan}.`,
      testId: 'deploy-dialog',
      confirmLabel: 'Deploy',
      body: [
        needsForce
          ? h(
              'p',
              { class: 'callout callout-warn' },
              'The state is unknown: a deploy may act on resources whose state nobody knows. Resolving first is safer.',
            )
          : null,
        h(
          'details',
          { class: 'override' },
          h('summary', null, 'Override params'),
          h(
            'div',
            { class: 'field' },
            h('label', { for: paramsId }, 'Params to merge over the deployment’s (JSON)'),
            params,
            h('p', { id: paramsHelp, class: 'help' }, 'Optional. Checked against the plan’s schema.'),
          ),
        ),
        force?.el,
      ],
      canConfirm: () => !needsForce || force.box.checked,
      onConfirm: async () => {
        const body = {};
        const text = params.value.trim();
        if (text) {
          let v;
          try {
            v = JSON.parse(text);
          } catch (e) {
            throw new Error(`Params: not valid JSON (${e.message})`);
          }
          if (!v || typeof v !== 'object' || Array.isArray(v))
            throw new Error('Params: must be a JSON object');
          body.params = v;
        }
        if (needsForce) body.force = true;
        const a = await api.deploy(dep.id, body, dep.version);
        toast(`Deploy ${attemptLabel(a)} of ${dep.name} queued`);
      },
    });
  }

  function teardownDialog() {
    const needsForce = dep.state === 'unknown';
    const force = needsForce ? forceBox('tear down') : null;
    const inputId = nextId('confirm');
    const hintId = nextId('hint');
    const input = h('input', {
      id: inputId,
      name: 'confirm',
      autocomplete: 'off',
      spellcheck: 'false',
      autocapitalize: 'off',
      'aria-describedby': hintId,
    });
    const hint = h('p', { id: hintId, class: 'help', 'aria-live': 'polite' }, '');
    const name = dep.name;
    const check = () => {
      const v = input.value;
      const wrong = v !== '' && v !== name;
      hint.textContent = wrong ? 'That is not the name of this deployment.' : '';
      hint.classList.toggle('field-error', wrong);
      if (wrong) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    };
    input.addEventListener('input', check);
    openDialog({
      title: `Tear down ${name}?`,
      description: 'Runs the plan’s teardown. What it removes cannot be brought back by Lifeline.',
      testId: 'teardown-dialog',
      confirmLabel: 'Tear down',
      danger: true,
      body: [
        h(
          'div',
          { class: 'field' },
          h('label', { for: inputId }, 'Type ', h('strong', { class: 'mono' }, name), ' to confirm'),
          input,
          hint,
        ),
        force?.el,
      ],
      canConfirm: () => input.value === name && (!needsForce || force.box.checked),
      onConfirm: async () => {
        const body = { confirm: input.value };
        if (needsForce) body.force = true;
        const a = await api.teardown(dep.id, body, dep.version);
        toast(`Teardown ${attemptLabel(a)} of ${name} queued`);
      },
    });
  }

  function cancelDialog() {
    const cur = current();
    openDialog({
      title: `Cancel ${attemptLabel(cur)}?`,
      description:
        'Lifeline stops the plan’s processes (SIGTERM, then SIGKILL after the plan’s grace period). The attempt is cancelled once they are gone.',
      testId: 'cancel-dialog',
      confirmLabel: 'Cancel attempt',
      cancelLabel: 'Keep running',
      danger: true,
      onConfirm: async () => {
        await api.cancel(dep.id);
        toast(`Cancel of ${attemptLabel(cur)} requested`);
      },
    });
  }

  async function runCheck() {
    try {
      await api.check(dep.id);
      toast(`Running the check of ${dep.name}…`);
    } catch (err) {
      toast(explain(err), { kind: 'error' });
    }
  }

  function resolveDialog() {
    const options = [
      ['ready', 'Ready', 'It is deployed and working.'],
      ['failed', 'Failed', 'It is broken or half-done.'],
      ['torn_down', 'Torn down', 'Nothing of it exists any more.'],
    ];
    const group = nextId('state');
    const radios = options.map(([value, label, help]) => {
      const id = nextId('resolve');
      const helpId = nextId('help');
      const input = h('input', { type: 'radio', name: group, id, value, 'aria-describedby': helpId });
      return {
        input,
        el: h(
          'div',
          { class: 'radio' },
          input,
          h(
            'label',
            { for: id },
            h('span', { class: ['swatch', `tone-${value}`], 'aria-hidden': 'true' }),
            label,
          ),
          h('span', { id: helpId, class: 'help' }, help),
        ),
      };
    });
    const reasonId = nextId('reason');
    const reason = h('textarea', { id: reasonId, name: 'reason', rows: 3, maxlength: 1000, required: true });
    openDialog({
      title: `Resolve ${dep.name}`,
      description:
        'Say what really happened. The state, your token’s name and the reason are recorded as a transition.',
      testId: 'resolve-dialog',
      confirmLabel: 'Resolve',
      body: [
        h(
          'fieldset',
          { class: 'radios' },
          h('legend', null, 'Actual state'),
          radios.map((r) => r.el),
        ),
        h('div', { class: 'field' }, h('label', { for: reasonId }, 'Reason'), reason),
      ],
      canConfirm: () => radios.some((r) => r.input.checked) && reason.value.trim() !== '',
      onConfirm: async () => {
        const state = radios.find((r) => r.input.checked).input.value;
        await api.resolve(dep.id, { state, reason: reason.value.trim() }, dep.version);
        toast(`${dep.name} resolved as ${stateLabel(state)}`);
      },
    });
  }

  function deleteDialog() {
    const needsForce = !['pending', 'torn_down'].includes(dep.state);
    const forceId = nextId('force');
    const force = needsForce ? h('input', { type: 'checkbox', id: forceId }) : null;
    openDialog({
      title: `Delete ${dep.name}?`,
      description: 'Removes the deployment from the list. Its events and attempts stay in the history.',
      testId: 'delete-dialog',
      confirmLabel: 'Delete',
      danger: true,
      body: needsForce
        ? h(
            'div',
            { class: 'field field-check force-field' },
            force,
            h(
              'label',
              { for: forceId },
              `Force: delete although it is ${stateLabel(dep.state)} (not torn down)`,
            ),
          )
        : [],
      canConfirm: () => !needsForce || force.checked,
      onConfirm: async () => {
        await api.remove(dep.id, needsForce, dep.version);
        toast(`${dep.name} deleted`);
        navigate('#/');
      },
    });
  }

  // ---- start -----------------------------------------------------------------------------------
  async function load() {
    try {
      const [d, tr, at, plans] = await Promise.all([
        api.deployment(ref),
        api.transitions(ref),
        api.attempts(ref, { limit: 50 }),
        getPlans(),
      ]);
      if (destroyed) return;
      dep = d;
      transitions = tr.items;
      attempts = at.items;
      plan = plans.get(d.plan) ?? null;
      lastSeq = transitions.reduce((m, t) => Math.max(m, t.seq), 0);
      renderAll();
      // The stream starts at the last transition read, or, while an attempt runs, at its acceptance, so
      // that every line of its output is still ahead.
      let after = lastSeq;
      const cur = current();
      const running = cur && (cur.state === 'queued' || cur.state === 'running');
      if (running) {
        const accepted = [...transitions].reverse().find((t) => t.attempt_id === cur.id);
        if (accepted) after = Math.min(after, accepted.seq);
      }
      if (cur) void showLog(cur.id, running ? 'events' : 'fetch');
      else resetLog(null, 'events');
      stream = openStream({
        path: `/v1/deployments/${encodeURIComponent(dep.id)}/events/stream`,
        params: { after, type: STREAM_TYPES },
        onEvent,
        onStatus: (s) => {
          if (destroyed) return;
          setConn(s);
          if (s === 'gone') markDeleted();
        },
      });
      startTicker();
    } catch (err) {
      if (destroyed) return;
      if (err instanceof ApiError && err.status === 404) {
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
      if (!dep) return;
      renderActions();
      renderCallouts();
    },
    destroy() {
      destroyed = true;
      stream?.close();
      clearTimeout(refreshTimer);
      clearTimeout(flushTimer);
      clearInterval(ticker);
    },
  };
}
