// Modal dialogs on the native <dialog> element: focus moves in and is trapped, Escape closes, and focus
// returns to the button that opened it.
import { h, nextId } from './dom.js';
import { explain } from './api.js';

/**
 * Opens a dialog with a form.
 * - body: nodes inside the form
 * - confirmLabel, danger: the submit button; cancelLabel: the button that closes it
 * - canConfirm(): whether the submit button is enabled (call ctx.update() after input changes)
 * - onConfirm(): async; a rejection shows its message in the dialog and keeps it open
 */
export function openDialog({
  title,
  description,
  body = [],
  confirmLabel = 'OK',
  cancelLabel = 'Cancel',
  danger = false,
  canConfirm,
  onConfirm,
  testId,
}) {
  const opener = document.activeElement;
  const titleId = nextId('dlg-title');
  const descId = description ? nextId('dlg-desc') : null;
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const cancel = h('button', { type: 'button', class: 'btn' }, cancelLabel);
  const confirm = h(
    'button',
    { type: 'submit', class: ['btn', danger ? 'btn-danger' : 'btn-primary'] },
    confirmLabel,
  );
  const form = h(
    'form',
    { class: 'modal-form', novalidate: true },
    h('h2', { id: titleId, class: 'modal-title' }, title),
    description ? h('p', { id: descId, class: 'modal-desc' }, description) : null,
    h('div', { class: 'modal-body' }, body),
    error,
    h('div', { class: 'modal-actions' }, cancel, confirm),
  );
  const dialog = h(
    'dialog',
    { class: 'modal', 'aria-labelledby': titleId, 'aria-describedby': descId, 'data-testid': testId },
    form,
  );

  let busy = false;
  const update = () => {
    confirm.disabled = busy || (canConfirm ? !canConfirm() : false);
  };
  const close = () => dialog.close();
  form.addEventListener('input', update);
  form.addEventListener('change', update);
  cancel.addEventListener('click', close);
  dialog.addEventListener('close', () => {
    dialog.remove();
    // The opener may have been re-rendered meanwhile (live updates): then focus its successor.
    const target =
      opener && !opener.isConnected && opener.dataset?.action
        ? document.querySelector(`[data-action="${opener.dataset.action}"]`)
        : opener;
    if (target && target.isConnected && typeof target.focus === 'function') target.focus();
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (busy || (canConfirm && !canConfirm())) return;
    busy = true;
    update();
    error.hidden = true;
    confirm.setAttribute('aria-busy', 'true');
    try {
      await onConfirm?.();
      close();
    } catch (err) {
      error.textContent = explain(err);
      error.hidden = false;
    } finally {
      busy = false;
      confirm.removeAttribute('aria-busy');
      update();
    }
  });

  document.body.appendChild(dialog);
  update();
  dialog.showModal();
  const first = form.querySelector('input:not([type=hidden]), textarea, select');
  (first ?? confirm).focus();
  return { dialog, update, close, error };
}
