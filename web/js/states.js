// The state vocabulary the views share: deployment states, which of them are busy, and the names people
// read for deployment and attempt states. Pure data (no DOM), so Node tests can hold it to src/domain.

export const DEPLOYMENT_STATES = [
  'pending',
  'deploying',
  'ready',
  'failed',
  'unknown',
  'tearing_down',
  'torn_down',
];

/** States with an attempt in progress (the domain's isBusy). */
export const ACTIVE_STATES = new Set(['deploying', 'tearing_down']);

const LABEL = {
  pending: 'pending',
  deploying: 'deploying',
  ready: 'ready',
  failed: 'failed',
  unknown: 'unknown',
  tearing_down: 'tearing down',
  torn_down: 'torn down',
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  cancelled: 'cancelled',
  partial: 'partial',
  waiting: 'waiting',
  launched: 'launched',
  skipped: 'skipped',
  not_needed: 'not needed',
};

export function stateLabel(state) {
  return LABEL[state] ?? state;
}

/** The current attempt a deploy or teardown acceptance (`to`) starts; its number comes with the next read. */
export function acceptedAttempt(attemptId, to) {
  return {
    id: attemptId,
    number: null,
    kind: to === 'tearing_down' ? 'teardown' : 'deploy',
    state: 'queued',
  };
}
