// The deployment page's actions row: which actions the token's role may take, which of them the state
// blocks and why (said on the button, not hidden), and a hint line. The dialogs they open are given to it.
import { can } from '../../api.js';
import { h, nextId, setChildren, toast } from '../../dom.js';
import { currentAttempt, isActive, rollbackTarget } from './reducer.js';

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

/** on: { deploy, rollback, teardown, cancel, check, resolve, delete }, each called when its button is used. */
export function actionsRow(on) {
  const actions = h('div', {
    class: 'actions',
    role: 'group',
    'aria-label': 'Actions',
    'data-testid': 'actions',
  });
  const actionHint = h('p', { class: 'action-hint muted', hidden: true });
  const el = h('div', { class: 'actions-row' }, actions, actionHint);
  let signature = null;

  function buttons(model, plan) {
    const { dep } = model;
    const list = [];
    if (model.deleted || !dep) return list;
    const active = isActive(model);
    const unknown = dep.state === 'unknown';
    const busy = active ? 'An attempt is in progress; wait for it or cancel it.' : null;
    const unknownBlock =
      unknown && !can('admin') ? 'The state is unknown: resolve it or run a check first.' : null;
    if (can('operator')) {
      list.push(
        actionButton('deploy', 'Deploy', {
          kind: 'primary',
          disabledWhy: busy ?? unknownBlock,
          onClick: on.deploy,
        }),
      );
      // Offered where it helps: after a failed deploy, back to what last worked.
      if (dep.state === 'failed') {
        const target = rollbackTarget(model);
        list.push(
          actionButton('rollback', target ? `Roll back to #${target.number}…` : 'Roll back…', {
            disabledWhy: busy ?? (target ? null : 'No earlier deploy attempt succeeded.'),
            onClick: on.rollback,
          }),
        );
      }
      list.push(
        actionButton('teardown', 'Tear down', {
          kind: 'danger-outline',
          disabledWhy: busy ?? (dep.state === 'torn_down' ? 'Already torn down.' : unknownBlock),
          onClick: on.teardown,
        }),
      );
      list.push(
        actionButton('cancel', !active && dep.retry ? 'Cancel retry' : 'Cancel attempt', {
          disabledWhy: active || dep.retry ? null : 'No attempt is in progress.',
          onClick: on.cancel,
        }),
      );
      if (plan?.has_check) {
        list.push(actionButton('check', 'Run check', { disabledWhy: busy, onClick: on.check }));
      }
    }
    if (can('admin')) {
      list.push(
        actionButton('resolve', 'Resolve…', {
          kind: unknown ? 'warn' : '',
          disabledWhy: unknown ? null : 'Only an unknown state needs resolving.',
          onClick: on.resolve,
        }),
      );
      list.push(actionButton('delete', 'Delete…', { disabledWhy: busy, onClick: on.delete }));
    }
    return list;
  }

  function render(model, plan) {
    const list = buttons(model, plan);
    // Re-render only when something changed, and keep the focus on the same action when it did: events
    // arrive at any time, and a keyboard user must not lose their place.
    const next = JSON.stringify(
      list.map(([btn]) => [btn.dataset.action, btn.textContent, btn.getAttribute('title'), btn.className]),
    );
    if (next !== signature) {
      signature = next;
      const focused = actions.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      setChildren(actions, list);
      if (focused) actions.querySelector(`[data-action="${focused}"]`)?.focus();
    }
    actions.hidden = list.length === 0;
    if (list.length === 0 && model.dep && !model.deleted) {
      actionHint.hidden = false;
      actionHint.textContent = 'Read only: your token’s role cannot change deployments.';
    } else if (isActive(model) && list.length > 0) {
      const cur = currentAttempt(model);
      actionHint.hidden = false;
      actionHint.textContent = `Attempt ${cur?.number ? `#${cur.number} ` : ''}is in progress; deploy, teardown and delete wait until it ends.`;
    } else actionHint.hidden = true;
  }

  return { el, render };
}
