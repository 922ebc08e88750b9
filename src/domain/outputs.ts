// Outputs (SPEC §12.1): what a plan publishes with `{"output": {…}}` runner events. Pure rules: how a
// published object merges into an attempt's outputs, the size bound, what an attempt's end does to its
// deployment's outputs, and the fold of `outputs_changed` events that gives the stored value.

export type Outputs = Record<string, unknown>;

/** At most this many bytes of serialized JSON per attempt, hence per deployment. */
export const OUTPUTS_LIMIT = 64 * 1024;

export type OutputMerge =
  | { ok: true; outputs: Outputs; bytes: number }
  | { ok: false; reason: 'not_object' }
  | { ok: false; reason: 'too_large'; bytes: number };

const utf8 = new TextEncoder();

const isObject = (v: unknown): v is Outputs => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `published` (the runner event's `output`) merged into `current`, later keys winning; refused when it is
 * not an object or when the result would exceed OUTPUTS_LIMIT (the outputs then stay as they were).
 */
export function mergeOutputs(current: Outputs, published: unknown, limit = OUTPUTS_LIMIT): OutputMerge {
  if (!isObject(published)) return { ok: false, reason: 'not_object' };
  // fromEntries defines own properties: a key such as "__proto__" stays a plain key.
  const outputs: Outputs = Object.fromEntries([...Object.entries(current), ...Object.entries(published)]);
  const bytes = utf8.encode(JSON.stringify(outputs)).length;
  if (bytes > limit) return { ok: false, reason: 'too_large', bytes };
  return { ok: true, outputs, bytes };
}

/**
 * What an attempt's end does to its deployment's outputs: a succeeded deploy that moved the deployment
 * (it was the current attempt) gives them its own; a succeeded teardown clears them; anything else
 * (a failure, an attempt no longer current) leaves them. Null: unchanged.
 */
export function outputsAfterEnd(
  kind: 'deploy' | 'teardown',
  attemptState: string,
  deploymentMoved: boolean,
  attemptOutputs: Outputs,
): Outputs | null {
  if (!deploymentMoved || attemptState !== 'succeeded') return null;
  return kind === 'deploy' ? attemptOutputs : {};
}

/** JSON text with object keys sorted: equal values, equal texts, whatever order the keys came in. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    isObject(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}

export function sameOutputs(a: Outputs, b: Outputs): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** A stored outputs column (JSON text; absent or null before migration 014) as an object. */
export function parseOutputs(text: string | null | undefined): Outputs {
  if (!text) return {};
  const v: unknown = JSON.parse(text);
  return isObject(v) ? v : {};
}

/** Folds a deployment's events (seq order) into its outputs: the last `outputs_changed`, else `{}`. */
export function foldOutputs(events: { type: string; data: { outputs?: unknown } }[]): Outputs {
  let outputs: Outputs = {};
  for (const e of events)
    if (e.type === 'outputs_changed' && isObject(e.data.outputs)) outputs = e.data.outputs;
  return outputs;
}
