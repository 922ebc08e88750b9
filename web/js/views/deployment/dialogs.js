// The deployment page's dialogs (deploy, roll back, tear down, cancel, resolve, delete) and the check: what each asks
// for, and the write it sends. Each takes get(), the page's current model, read again at confirm time so the
// write carries the version the page shows then.
import { api, explain } from '../../api.js';
import { openDialog } from '../../dialog.js';
import { h, nextId, toast } from '../../dom.js';
import { jsonTextarea, parseParamsJson } from '../../params-form.js';
import { navigate } from '../../shell.js';
import { stateLabel } from '../../states.js';
import { currentAttempt, rollbackTarget } from './reducer.js';

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

export function deployDialog(get) {
  const dep = () => get().dep;
  const needsForce = dep().state === 'unknown';
  const force = needsForce ? forceBox('deploy') : null;
  const paramsId = nextId('override');
  const paramsHelp = nextId('help');
  const params = jsonTextarea(paramsId, paramsHelp, 3);
  openDialog({
    title: `Deploy ${dep().name}`,
    description: `Starts a deploy attempt with plan ${dep().plan}.`,
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
      if (text) body.params = parseParamsJson(text);
      if (needsForce) body.force = true;
      const a = await api.deploy(dep().id, body, dep().version);
      toast(`Deploy ${attemptLabel(a)} of ${dep().name} queued`);
    },
  });
}

export function rollbackDialog(get) {
  const dep = () => get().dep;
  const target = rollbackTarget(get());
  if (!target) {
    toast('There is no succeeded deploy attempt to roll back to.', { kind: 'error' });
    return;
  }
  const needsForce = dep().state === 'unknown';
  const force = needsForce ? forceBox('roll back') : null;
  const params = target.params ?? {};
  openDialog({
    title: `Roll back ${dep().name}?`,
    description: `Starts a deploy attempt with the params of attempt #${target.number}, the last one that succeeded.`,
    testId: 'rollback-dialog',
    confirmLabel: `Roll back to #${target.number}`,
    body: [
      h('p', { class: 'help' }, 'Params it will run with (secrets are masked):'),
      h(
        'pre',
        { class: 'json', 'data-testid': 'rollback-params' },
        Object.keys(params).length ? JSON.stringify(params, null, 2) : '{} (no params)',
      ),
      force?.el,
    ],
    canConfirm: () => !needsForce || force.box.checked,
    onConfirm: async () => {
      // The target shown is the target sent: `to` pins it even if another attempt succeeds meanwhile.
      const body = { to: target.number };
      if (needsForce) body.force = true;
      const a = await api.rollback(dep().id, body, dep().version);
      toast(`Rollback ${attemptLabel(a)} of ${dep().name} to #${target.number} queued`);
    },
  });
}

export function teardownDialog(get) {
  const dep = () => get().dep;
  const needsForce = dep().state === 'unknown';
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
  const name = dep().name;
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
      const a = await api.teardown(dep().id, body, dep().version);
      toast(`Teardown ${attemptLabel(a)} of ${name} queued`);
    },
  });
}

export function cancelDialog(get) {
  const dep = () => get().dep;
  const cur = currentAttempt(get());
  const retry = dep().retry;
  if (retry && !(cur && (cur.state === 'queued' || cur.state === 'running'))) {
    openDialog({
      title: `Cancel retry ${retry.number}/${retry.of}?`,
      description: 'The automatic retry will not start; the deployment stays failed.',
      testId: 'cancel-dialog',
      confirmLabel: 'Cancel retry',
      cancelLabel: 'Keep retry',
      danger: true,
      onConfirm: async () => {
        await api.cancel(dep().id);
        toast(`Retry of ${dep().name} cancelled`);
      },
    });
    return;
  }
  openDialog({
    title: `Cancel ${attemptLabel(cur)}?`,
    description:
      'Lifeline stops the plan’s processes (SIGTERM, then SIGKILL after the plan’s grace period). The attempt is cancelled once they are gone.',
    testId: 'cancel-dialog',
    confirmLabel: 'Cancel attempt',
    cancelLabel: 'Keep running',
    danger: true,
    onConfirm: async () => {
      await api.cancel(dep().id);
      toast(`Cancel of ${attemptLabel(cur)} requested`);
    },
  });
}

/**
 * `asked(true)` before the request (its result may come on the stream before the answer), `asked(false)`
 * when it was refused: the result is told to whoever asked, and only to them.
 */
export async function runCheck(get, asked = () => {}) {
  const dep = () => get().dep;
  asked(true);
  try {
    await api.check(dep().id);
    toast(`Running the check of ${dep().name}…`);
  } catch (err) {
    asked(false);
    toast(explain(err), { kind: 'error' });
  }
}

export function resolveDialog(get) {
  const dep = () => get().dep;
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
    title: `Resolve ${dep().name}`,
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
      await api.resolve(dep().id, { state, reason: reason.value.trim() }, dep().version);
      toast(`${dep().name} resolved as ${stateLabel(state)}`);
    },
  });
}

export function deleteDialog(get) {
  const dep = () => get().dep;
  const needsForce = !['pending', 'torn_down'].includes(dep().state);
  const forceId = nextId('force');
  const force = needsForce ? h('input', { type: 'checkbox', id: forceId }) : null;
  openDialog({
    title: `Delete ${dep().name}?`,
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
            `Force: delete although it is ${stateLabel(dep().state)} (not torn down)`,
          ),
        )
      : [],
    canConfirm: () => !needsForce || force.checked,
    onConfirm: async () => {
      await api.remove(dep().id, needsForce, dep().version);
      toast(`${dep().name} deleted`, { page: '#/' }); // said on the list, where this goes
      navigate('#/');
    },
  });
}
