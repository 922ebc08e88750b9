// Outputs published by runner events (SPEC §12.1), during ingestion: merged into the attempt's
// outputs in the ingesting transaction; what cannot be taken becomes a marker runner event.
import { mergeOutputs, OUTPUTS_LIMIT, parseOutputs, sameOutputs, type Outputs } from '../domain/outputs.ts';
import type { NewEvent } from '../domain/types.ts';
import type { DeploymentsTable } from '../store/schema.ts';

export interface PublishedOutputs {
  /** The stored column, parsed on the first `output` (most ingestions have none). */
  stored: string | null | undefined;
  outputs: Outputs | null;
  changed: boolean;
}

export function startOutputs(stored: string | null | undefined): PublishedOutputs {
  return { stored, outputs: null, changed: false };
}

/**
 * Takes the `output` of one (already masked) runner event, if it has one. Returns the marker event's
 * data when it cannot be taken: not an object, or the merged outputs would pass OUTPUTS_LIMIT (they
 * then stay at the last accepted value).
 */
export function takeOutput(
  state: PublishedOutputs,
  data: Record<string, unknown>,
): Record<string, unknown> | null {
  if (!Object.hasOwn(data, 'output')) return null;
  state.outputs ??= parseOutputs(state.stored);
  const merged = mergeOutputs(state.outputs, data.output);
  if (merged.ok) {
    state.outputs = merged.outputs;
    state.changed = true;
    return null;
  }
  if (merged.reason === 'not_object') {
    return {
      lifeline: 'output_invalid',
      detail: 'a runner event\'s "output" must be a JSON object ({"output": {"key": value}}); ignored',
    };
  }
  return {
    lifeline: 'outputs_too_large',
    bytes: merged.bytes,
    limit: OUTPUTS_LIMIT,
    detail: `the attempt's outputs would be ${merged.bytes} bytes of JSON, more than ${OUTPUTS_LIMIT}; this output was ignored and the outputs stay as they were`,
  };
}

export interface OutputsWrite {
  /** For the deployment's `set` in applyTransition; absent when its outputs stay. */
  set?: { outputs: string };
  /** `outputs_changed` with the new object, to append after the transition's own events. */
  events: NewEvent[];
}

/**
 * The deployment's outputs become `next` (null: unchanged). Written, with an `outputs_changed` event,
 * only when they differ from the stored ones: the event says what changed, and folding the events
 * still gives the stored value since an unchanged value needs none.
 */
export function outputsWrite(
  dep: Pick<DeploymentsTable, 'id' | 'outputs'>,
  next: Outputs | null,
  attemptId: string | null,
): OutputsWrite {
  if (next === null || sameOutputs(next, parseOutputs(dep.outputs))) return { events: [] };
  return {
    set: { outputs: JSON.stringify(next) },
    events: [
      { type: 'outputs_changed', deployment_id: dep.id, attempt_id: attemptId, data: { outputs: next } },
    ],
  };
}

/** A move to `torn_down` by anything but an attempt (resolve, a check's `absent`) clears them too. */
export function outputsOnMove(
  dep: Pick<DeploymentsTable, 'id' | 'outputs'>,
  to: string | undefined,
): OutputsWrite {
  return outputsWrite(dep, to === 'torn_down' ? {} : null, null);
}
