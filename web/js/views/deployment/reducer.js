// The deployment page's model: the deployment, its attempts, its transitions and whether it was deleted,
// from the first reads and then from each event of its stream. Pure (no DOM, no I/O, never mutates its
// input): each step returns the next model and what changed, and the page decides how to show it.
import { ACTIVE_STATES, acceptedAttempt, stateLabel } from '../../states.js';

/** The model from the first reads (transitions oldest first, attempts newest first). */
export function initialModel({ deployment, transitions, attempts }) {
  return {
    dep: deployment,
    transitions,
    attempts,
    lastSeq: transitions.reduce((m, t) => Math.max(m, t.seq), 0),
    deleted: false,
  };
}

export const currentAttempt = (model) => model.dep?.current_attempt ?? null;
export const attemptOf = (model, id) => model.attempts.find((a) => a.id === id);
/**
 * The attempt a rollback runs the params of (SPEC §9.2): the newest succeeded deploy attempt before the
 * current one, among the attempts the page has read. Null when there is none.
 */
export function rollbackTarget(model) {
  const cur = currentAttempt(model);
  const before = cur?.number ?? Infinity;
  return (
    model.attempts.find((a) => a.kind === 'deploy' && a.state === 'succeeded' && a.number < before) ?? null
  );
}

export const isActive = (model) => Boolean(model.dep) && ACTIVE_STATES.has(model.dep.state);

/**
 * Where the page's stream starts and how the current attempt's log is read: after the last transition read,
 * or, while an attempt is queued or running, at its acceptance, so that every line of its output is still
 * ahead ('events', as for an attempt still to come); a finished attempt's log is read whole ('fetch').
 */
export function streamStart(model) {
  let after = model.lastSeq;
  const cur = currentAttempt(model);
  const running = Boolean(cur) && (cur.state === 'queued' || cur.state === 'running');
  if (running) {
    const accepted = [...model.transitions].reverse().find((t) => t.attempt_id === cur.id);
    if (accepted) after = Math.min(after, accepted.seq);
  }
  return { after, logAttempt: cur?.id ?? null, logMode: cur && !running ? 'fetch' : 'events' };
}

/**
 * One event of the stream. `changes` says what to show again (head, actions, timeline, attempts, logTitle),
 * whether to re-read the deployment (refresh), what to announce or toast, and followAttempt: an attempt
 * that began while the page is open. log_line events are the log panel's, not the model's.
 */
export function applyEvent(model, ev) {
  const data = ev.data ?? {};
  switch (ev.type) {
    case 'state_transition':
      return data.entity === 'deployment'
        ? deploymentTransition(model, ev, data)
        : attemptTransition(model, ev, data);
    case 'attempt_start':
    case 'attempt_end':
      return { model, changes: { refresh: true } };
    case 'check_result': {
      // Toasts answer what the person at this page did: the check they asked for, not the verifying check
      // that runs by itself after an attempt's exit 0 (`verify`), nor one someone else ran.
      if (data.verify || !model.checkAsked) return { model, changes: { refresh: true } };
      const verdict = data.verdict ?? 'done';
      return {
        model: { ...model, checkAsked: false },
        changes: {
          refresh: true,
          toast: {
            text: `Check of ${model.dep.name}: ${verdict} (rc ${data.rc ?? '?'})`,
            kind: verdict === 'failed' ? 'error' : 'info',
          },
        },
      };
    }
    case 'deployment_deleted':
      return markDeleted(model);
    // The outputs changed (SPEC §12.1): the event has them, already masked; the page re-reads them too.
    case 'outputs_changed':
      return {
        model: { ...model, dep: { ...model.dep, outputs: data.outputs ?? {} } },
        changes: { head: true, refresh: true },
      };
    // An automatic retry was scheduled, cancelled or ran out (SPEC §9.1): the deployment says which.
    case 'retry_scheduled':
    case 'retry_cancelled':
    // Drift found or ended (SPEC §14.2): the deployment's `drift` says since when and why.
    case 'drift_detected':
    case 'drift_cleared':
    // A gate began or stopped holding the current attempt, or an approval was given (SPEC §13).
    case 'gate_waiting':
    case 'gate_opened':
    case 'approval_granted':
      return { model, changes: { refresh: true } };
    // Nobody here asked for it: said to screen readers, and the page shows the state it left.
    case 'retry_exhausted':
      return {
        model,
        changes: {
          refresh: true,
          announce: `${model.dep.name}: ${data.number ?? 'all'} automatic retries failed`,
        },
      };
    default:
      return { model, changes: {} };
  }
}

/** Whether the person at this page asked for a check: its result is theirs to be told (applyEvent). */
export function askedCheck(model, asked) {
  return { ...model, checkAsked: asked };
}

/** The deployment is gone (an event, a 404, or the stream said so); once is enough. */
export function markDeleted(model) {
  if (model.deleted) return { model, changes: {} };
  return {
    model: { ...model, deleted: true },
    changes: { callouts: true, actions: true, announce: `${model.dep.name} was deleted` },
  };
}

/** Fresh reads of the deployment and its attempts; an older deployment than the one shown is kept out. */
export function applyRefresh(model, deployment, attempts) {
  return {
    ...model,
    dep: deployment.version >= model.dep.version ? deployment : model.dep,
    attempts,
  };
}

function attemptTransition(model, ev, data) {
  const attempts = model.attempts.map((a) =>
    a.id === ev.attempt_id ? { ...a, state: data.to, ...(data.reason ? { reason: data.reason } : {}) } : a,
  );
  const cur = currentAttempt(model);
  const dep =
    cur && cur.id === ev.attempt_id
      ? { ...model.dep, current_attempt: { ...cur, state: data.to } }
      : model.dep;
  return {
    model: { ...model, dep, attempts },
    changes: { attempts: true, head: true, logTitle: true, refresh: true },
  };
}

function deploymentTransition(model, ev, data) {
  if (ev.seq <= model.lastSeq) return { model, changes: {} }; // in the transitions read already
  const transition = {
    seq: ev.seq,
    at: ev.at,
    from: data.from ?? null,
    to: data.to,
    trigger: data.trigger,
    reason: data.reason ?? null,
    actor: data.actor,
    attempt_id: ev.attempt_id,
  };
  let dep = model.dep;
  if (typeof data.version === 'number' && data.version > dep.version) {
    dep = { ...dep, state: data.to, version: data.version, state_changed_at: ev.at, updated_at: ev.at };
  }
  let followAttempt = null;
  if (ev.attempt_id && ACTIVE_STATES.has(data.to) && ev.attempt_id !== dep.current_attempt?.id) {
    // Its number and the rest come with the refresh.
    dep = { ...dep, current_attempt: acceptedAttempt(ev.attempt_id, data.to) };
    followAttempt = ev.attempt_id;
  }
  return {
    model: { ...model, dep, transitions: [...model.transitions, transition], lastSeq: ev.seq },
    changes: {
      head: true,
      actions: true,
      timeline: true,
      refresh: true,
      followAttempt,
      announce: `${dep.name} is now ${stateLabel(dep.state)}`,
    },
  };
}
