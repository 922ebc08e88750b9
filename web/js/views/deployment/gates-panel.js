// What a waiting attempt waits for (SPEC §13.4): each gate with its detail and since when, its place in a
// concurrency queue, and Approve / Reject with a reason for those the server would let: at least the
// plan's approval role, and for Approve not the token that asked (no self-approval). The server decides
// anyway; this only leaves out what it would refuse.
import { api, can, explain, session } from '../../api.js';
import { h, nextId, setChildren, toast } from '../../dom.js';
import { absolute, relTime } from '../../format.js';

/** The attempt a gate holds: the current one, queued, with something in `waiting`. */
export function waitingAttempt(model) {
  const id = model.dep?.current_attempt?.id;
  const a = id ? model.attempts.find((x) => x.id === id) : null;
  return a && a.state === 'queued' && Array.isArray(a.waiting) && a.waiting.length > 0 ? a : null;
}

function gateText(w) {
  const d = w.detail ?? {};
  if (w.gate === 'concurrency') {
    return [
      'Concurrency limit on ',
      h('code', null, String(d.key ?? '?')),
      d.position
        ? h('strong', { 'data-testid': 'queue-position' }, ` — position ${d.position} in the queue`)
        : null,
    ];
  }
  if (w.gate === 'freeze') {
    return [
      'Freeze ',
      h('strong', null, String(d.freeze ?? '?')),
      d.until ? ` until ${absolute(d.until)}` : null,
    ];
  }
  if (w.gate === 'approval') {
    return [
      `Approval by ${d.role === 'admin' ? 'an admin' : 'an operator'} other than `,
      h('strong', null, String(d.requested_by ?? 'the requester')),
    ];
  }
  return [w.gate];
}

/** onDecided(): the page re-reads the deployment after an approve or reject. */
export function gatesPanel({ onDecided }) {
  const list = h('ul', { class: 'gates-list' });
  const decide = h('div', { class: 'gate-decide-box' });
  const el = h(
    'section',
    { class: 'card', 'aria-labelledby': 'gates-title', 'data-testid': 'gates', hidden: true },
    h('div', { class: 'card-head' }, h('h2', { id: 'gates-title' }, 'Waiting to start')),
    list,
    decide,
  );
  let shownFor = null;

  function decideForm(a, w) {
    const role = w.detail?.role === 'admin' ? 'admin' : 'operator';
    const mine = session.actor !== null && session.actor === a.requested_by;
    const mayApprove = can(role) && !mine;
    const mayReject = mine ? can('operator') : can(role);
    if (!mayApprove && !mayReject) {
      return h(
        'p',
        { class: 'muted' },
        mine
          ? 'You asked for this attempt: another token must approve it.'
          : `Only ${role === 'admin' ? 'an admin' : 'an operator'} may approve or reject it.`,
      );
    }
    const inputId = nextId('reason');
    const input = h('input', { id: inputId, name: 'reason', maxlength: '1000', autocomplete: 'off' });
    const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const act = async (what, btn) => {
      const reason = input.value.trim();
      if (!reason) {
        error.textContent = 'Say why: a reason is required.';
        error.hidden = false;
        input.focus();
        return;
      }
      btn.disabled = true;
      try {
        await (what === 'approve' ? api.approve(a.id, { reason }) : api.reject(a.id, { reason }));
        toast(what === 'approve' ? `Attempt #${a.number} approved` : `Attempt #${a.number} rejected`);
        onDecided();
      } catch (err) {
        error.textContent = explain(err);
        error.hidden = false;
      } finally {
        btn.disabled = false;
      }
    };
    const approve = mayApprove
      ? h('button', { type: 'button', class: 'btn btn-primary', 'data-action': 'approve' }, 'Approve')
      : null;
    const reject = mayReject
      ? h('button', { type: 'button', class: 'btn btn-danger-outline', 'data-action': 'reject' }, 'Reject')
      : null;
    approve?.addEventListener('click', () => act('approve', approve));
    reject?.addEventListener('click', () => act('reject', reject));
    return h(
      'div',
      { class: 'field' },
      h('label', { for: inputId }, 'Reason'),
      input,
      mine ? h('p', { class: 'help' }, 'You asked for this attempt: another token must approve it.') : null,
      error,
      h('div', { class: 'gate-decide' }, approve, reject),
    );
  }

  function render(model) {
    const a = waitingAttempt(model);
    el.hidden = !a;
    if (!a) {
      shownFor = null;
      list.replaceChildren();
      decide.replaceChildren();
      return;
    }
    setChildren(
      list,
      a.waiting.map((w) =>
        h(
          'li',
          { dataset: { gate: w.gate } },
          gateText(w),
          h('span', { class: 'muted' }, ' · since '),
          relTime(w.since),
        ),
      ),
    );
    // Keep a reason being typed: rebuild the form only when the attempt or its approval gate changes.
    const approval = a.waiting.find((w) => w.gate === 'approval') ?? null;
    const key = approval ? `${a.id}:${session.actor}:${session.role}` : null;
    if (key !== shownFor) {
      shownFor = key;
      setChildren(decide, approval ? decideForm(a, approval) : null);
    }
  }

  return { el, render };
}
