// One stack's page (SPEC §12.5): its units drawn in dependency order, one column per depth, each with its
// live state and the active run's step for it; the run's progress; the actions the caller's role allows.
// Live: the stack's event stream (`stack=`) from where the reads ended; each event re-reads the stack and
// its run (debounced), so what is drawn is always what the API says.
import { api, ApiError, can, explain, headSeq } from '../api.js';
import { attemptSummary, driftBadge, runBadge, stateBadge, updateBadge } from '../badges.js';
import { openDialog } from '../dialog.js';
import { announce, h, nextId, setChildren, toast } from '../dom.js';
import { duration, relTime } from '../format.js';
import { openStream } from '../sse.js';
import { deploymentHref, setConn } from '../shell.js';
import { stateLabel } from '../states.js';
import { driftedUnits, runProgress, unitColumns, unitLabel } from './stack/model.js';

export function mountStack(root, { ref }) {
  let stack = null;
  let run = null; // the active run, or the last one when none is active
  let stream = null;
  let destroyed = false;
  let timer = null;
  let ticker = null;

  const titleId = nextId('stack-title');
  const nameEl = h('h1', { id: titleId, class: 'dep-name' }, ref);
  const badgeBox = h('span', { class: 'dep-badge' });
  const meta = h('dl', { class: 'meta' });
  const actions = h('div', {
    class: 'actions',
    role: 'group',
    'aria-label': 'Actions',
    'data-testid': 'actions',
  });
  const hint = h('p', { class: 'action-hint muted', hidden: true });
  const runBox = h('div', { class: 'run-box' });
  const graph = h('div', { class: 'stack-graph', 'data-testid': 'stack-graph' });
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
        h('a', { href: '#/stacks' }, 'Stacks'),
        h('span', { 'aria-hidden': 'true' }, ' / '),
        crumb,
      ),
      status,
      h(
        'header',
        { class: 'dep-head card' },
        h('div', { class: 'dep-title-row' }, nameEl, badgeBox),
        meta,
        h('div', { class: 'actions-row' }, actions, hint),
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'run-title', 'data-testid': 'run' },
        h('div', { class: 'card-head' }, h('h2', { id: 'run-title' }, 'Run')),
        runBox,
      ),
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'units-title' },
        h(
          'div',
          { class: 'card-head' },
          h('h2', { id: 'units-title' }, 'Units'),
          h('span', { class: 'muted' }, 'in dependency order, left to right'),
        ),
        graph,
      ),
    ),
  );

  // ---- rendering -------------------------------------------------------------------------------
  function renderHead() {
    document.title = `${stack.name} · Lifeline`;
    nameEl.textContent = stack.name;
    crumb.textContent = stack.name;
    const badge = badgeBox.querySelector('.badge');
    if (badge) updateBadge(badge, stack.state);
    else setChildren(badgeBox, stateBadge(stack.state, { large: true }));
    const item = (term, ...desc) =>
      h('div', { class: 'meta-item' }, h('dt', null, term), h('dd', null, ...desc));
    const drifted = driftedUnits(stack.units);
    setChildren(
      meta,
      item('Units', String(stack.units.length)),
      drifted.length
        ? item('Drifted', h('span', { 'data-testid': 'drifted-units' }, drifted.map(unitLabel).join(', ')))
        : null,
      item('On failure', stack.spec.on_failure ?? 'stop'),
      item('Updated', relTime(stack.updated_at)),
      item('Id', h('code', { class: 'id' }, stack.id)),
    );
  }

  function actionButton(id, label, { kind = '', why = null, onClick }) {
    const btn = h(
      'button',
      {
        type: 'button',
        class: ['btn', kind && `btn-${kind}`],
        'data-action': id,
        'aria-disabled': why ? 'true' : null,
        title: why,
      },
      label,
    );
    btn.addEventListener('click', () => (why ? toast(why) : onClick()));
    return btn;
  }

  let signature = null;
  function renderActions() {
    const list = [];
    if (can('operator')) {
      const active = Boolean(stack.active_run);
      const busy = active ? 'A run is in progress; wait for it or cancel it.' : null;
      const unknown =
        stack.state === 'unknown' && !can('admin') ? 'A unit is unknown: resolve it first.' : null;
      list.push(
        actionButton('deploy', 'Deploy', { kind: 'primary', why: busy ?? unknown, onClick: deployDialog }),
      );
      list.push(
        actionButton('teardown', 'Tear down…', {
          kind: 'danger-outline',
          why:
            busy ??
            (stack.state === 'torn_down' || stack.state === 'pending' ? 'Nothing is deployed.' : unknown),
          onClick: teardownDialog,
        }),
      );
      list.push(
        actionButton('cancel', 'Cancel run', {
          why: active ? null : 'No run is in progress.',
          onClick: cancelRun,
        }),
      );
    }
    const next = JSON.stringify(list.map((b) => [b.dataset.action, b.title]));
    if (next !== signature) {
      signature = next;
      const focused = actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      setChildren(actions, list);
      if (focused) actions.querySelector(`[data-action="${focused}"]`)?.focus();
    }
    actions.hidden = list.length === 0;
    hint.hidden = list.length > 0;
    hint.textContent = 'Read only: your token’s role cannot deploy or tear down stacks.';
  }

  function renderRun() {
    if (!run) {
      setChildren(runBox, h('p', { class: 'muted' }, 'No run yet.'));
      return;
    }
    const p = runProgress(run);
    const active = run.state === 'queued' || run.state === 'running';
    const took = (run.ended_at ? Date.parse(run.ended_at) : Date.now()) - Date.parse(run.created_at);
    setChildren(
      runBox,
      h(
        'p',
        { class: 'run-line', dataset: { runId: run.id, runState: run.state } },
        h('strong', null, run.kind),
        ' ',
        runBadge(run.state),
        ' ',
        h('span', { 'data-testid': 'run-progress' }, `${p.done} of ${p.total} units done`),
        h('span', { class: 'muted' }, ` · ${active ? 'running for' : 'took'} `, duration(took)),
        run.cancel_requested_at && active ? h('span', { class: 'muted' }, ' · cancel asked') : null,
        h(
          'span',
          { class: 'muted' },
          ' · ',
          active ? 'started ' : 'ended ',
          relTime(run.ended_at ?? run.created_at),
        ),
      ),
      h('progress', {
        max: String(Math.max(p.total, 1)),
        value: String(p.done),
        'aria-label': 'Run progress',
      }),
    );
  }

  function renderGraph() {
    const steps = new Map((run?.steps ?? []).map((s) => [s.deployment_id, s]));
    const cols = unitColumns(stack.units);
    setChildren(
      graph,
      cols.map((units, depth) =>
        h(
          'div',
          { class: 'stack-col', dataset: { depth: String(depth) } },
          h('h3', { class: 'stack-col-title muted' }, depth === 0 ? 'First' : `Then (${depth})`),
          h(
            'ul',
            { class: 'stack-units' },
            units.map((u) => {
              const step = steps.get(u.deployment_id);
              return h(
                'li',
                {
                  class: 'unit-card',
                  'data-testid': `unit-${u.deployment}`,
                  dataset: u.drift ? { state: u.state, drift: u.drift.verdict } : { state: u.state },
                },
                h(
                  'div',
                  { class: 'unit-top' },
                  h('a', { href: deploymentHref(u.deployment), class: 'name-link' }, unitLabel(u)),
                  h('span', { class: 'unit-badges' }, stateBadge(u.state), driftBadge(u.drift)),
                ),
                h(
                  'div',
                  { class: 'unit-meta muted' },
                  u.current_attempt ? attemptSummary(u.current_attempt) : null,
                  step
                    ? h(
                        'span',
                        { class: 'unit-step', dataset: { step: step.step } },
                        'run: ',
                        runBadge(step.step),
                      )
                    : null,
                  Object.keys(u.outputs ?? {}).length
                    ? h('span', null, `${Object.keys(u.outputs).length} outputs`)
                    : null,
                  u.after.length ? h('span', null, `after ${u.after.join(', ')}`) : null,
                ),
              );
            }),
          ),
        ),
      ),
    );
  }

  function renderAll() {
    renderHead();
    renderActions();
    renderRun();
    renderGraph();
  }

  // ---- actions ---------------------------------------------------------------------------------
  function deployDialog() {
    const force = stack.state === 'unknown';
    openDialog({
      title: `Deploy ${stack.name}?`,
      description: force
        ? 'A unit is unknown: this forces only the unknown units, then deploys what is not ready, in order.'
        : 'Deploys every unit that is not ready (or whose params changed), each after the units it comes after.',
      testId: 'stack-deploy-dialog',
      confirmLabel: force ? 'Force deploy' : 'Deploy',
      danger: force,
      onConfirm: async () => {
        const r = await api.stackDeploy(stack.name, force ? { force: true } : {});
        toast(`Deploy run of ${stack.name} started`);
        run = r;
        schedule();
      },
    });
  }

  function teardownDialog() {
    const name = stack.name;
    const inputId = nextId('confirm');
    const input = h('input', {
      id: inputId,
      name: 'confirm',
      autocomplete: 'off',
      spellcheck: 'false',
      autocapitalize: 'off',
    });
    const force = stack.state === 'unknown';
    openDialog({
      title: `Tear down ${name}?`,
      description: `Tears down all ${stack.units.length} units, the last ones first. What they remove cannot be brought back by Lifeline.`,
      testId: 'stack-teardown-dialog',
      confirmLabel: 'Tear down',
      danger: true,
      body: [
        h(
          'div',
          { class: 'field' },
          h('label', { for: inputId }, 'Type ', h('strong', { class: 'mono' }, name), ' to confirm'),
          input,
        ),
      ],
      canConfirm: () => input.value === name,
      onConfirm: async () => {
        const body = { confirm: input.value };
        if (force) body.force = true;
        run = await api.stackTeardown(name, body);
        toast(`Teardown run of ${name} started`);
        schedule();
      },
    });
  }

  async function cancelRun() {
    try {
      await api.stackCancel(stack.name);
      toast(`Cancel of the run of ${stack.name} asked`);
      schedule();
    } catch (err) {
      toast(explain(err), { kind: 'error' });
    }
  }

  // ---- live updates ----------------------------------------------------------------------------
  async function read() {
    const s = await api.stack(stack?.id ?? ref);
    const runId = s.active_run?.id ?? run?.id ?? null;
    let r = null;
    if (runId) r = await api.run(runId);
    else {
      const runs = await api.stackRuns(s.id, { limit: 1 });
      r = runs.items[0] ?? null;
    }
    return [s, r];
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  }

  async function refresh() {
    if (destroyed || !stack) return;
    try {
      const [s, r] = await read();
      if (destroyed) return;
      const was = stack.state;
      stack = s;
      run = r;
      renderAll();
      if (was !== s.state) announce(`${s.name} is ${stateLabel(s.state)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        status.textContent = 'This stack was deleted.';
        status.hidden = false;
        actions.hidden = true;
      }
    }
  }

  async function load() {
    try {
      const after = await headSeq();
      const [s, r] = await read();
      if (destroyed) return;
      stack = s;
      run = r;
      renderAll();
      stream = openStream({
        path: '/v1/events/stream',
        params: {
          after,
          stack: s.id,
          type: 'state_transition,attempt_start,attempt_end,outputs_changed,deployment_deleted,cancel_requested,drift_detected,drift_cleared',
        },
        onEvent: () => !destroyed && schedule(),
        onStatus: (st) => !destroyed && setConn(st),
      });
      ticker = setInterval(() => {
        if (!document.hidden && run && !run.ended_at) renderRun();
      }, 1000);
    } catch (err) {
      if (destroyed) return;
      if (err instanceof ApiError && err.status === 404) {
        setChildren(
          root,
          h(
            'section',
            { class: 'page' },
            h(
              'div',
              { class: 'card empty' },
              h('h1', null, 'Not found'),
              h('p', null, `There is no stack named ${ref}.`),
              h('p', null, h('a', { href: '#/stacks' }, 'Back to all stacks')),
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
      if (stack) renderActions();
    },
    destroy() {
      destroyed = true;
      stream?.close();
      clearTimeout(timer);
      clearInterval(ticker);
    },
  };
}
