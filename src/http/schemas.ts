// Zod schemas of the HTTP API (SPEC §3, §6). They validate requests, serialise responses and generate
// the OpenAPI document, so what is documented is what is enforced.
import { z } from 'zod';
import {
  ATTEMPT_REASONS,
  ATTEMPT_STATES,
  DEPLOYMENT_STATES,
  ERROR_CODES,
  GATE_NAMES,
  EVENT_TYPES,
} from '../domain/types.ts';
import { STACK_STATES } from '../domain/stack-state.ts';

// ---- responses ---------------------------------------------------------------------------------

export const FieldErrorSchema = z.object({ field: z.string(), reason: z.string() });

export const ProblemSchema = z
  .object({
    type: z.string().describe('A URI naming the problem type: urn:lifeline:problem:<code>'),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum([...ERROR_CODES, 'INTERNAL']),
    errors: z.array(FieldErrorSchema).optional(),
    trace_id: z.string().describe('The request id, also sent as the X-Request-Id header and logged'),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details (application/problem+json)' });

const JsonObject = z.record(z.string(), z.unknown());

export const AttemptSummarySchema = z
  .object({
    id: z.string(),
    number: z.number().int(),
    kind: z.enum(['deploy', 'teardown']),
    state: z.enum(ATTEMPT_STATES),
  })
  .meta({ id: 'AttemptSummary' });

export const ScheduledRetrySchema = z
  .object({
    number: z
      .number()
      .int()
      .describe('which retry: 1 for the first since the last success or operator action'),
    of: z.number().int().describe("the plan's retry.max"),
    at: z.string().describe('when it starts (the deployment stays failed until then)'),
  })
  .meta({ id: 'ScheduledRetry' });

export const DriftSchema = z
  .object({
    since: z.string().describe('when a check first found it drifted (this stay in ready)'),
    verdict: z.enum(['absent', 'failed']).describe("the last check's verdict"),
    heal_at: z.string().nullable().describe('when a self-heal deploy starts, if one waits'),
  })
  .meta({ id: 'Drift' });

export const DeploymentSchema = z
  .object({
    id: z.string().describe('dep_…'),
    name: z.string(),
    plan: z.string(),
    params: JsonObject.describe('writeOnly params are masked'),
    labels: z.record(z.string(), z.string()),
    state: z.enum(DEPLOYMENT_STATES),
    version: z.number().int().describe('Incremented by every state write; the ETag is "<version>"'),
    state_changed_at: z.string(),
    current_attempt: AttemptSummarySchema.nullable(),
    retry: ScheduledRetrySchema.nullable().describe(
      'the automatic retry waiting on this failed deployment, if any',
    ),
    outputs: JsonObject.describe(
      'what its last succeeded deploy published (`{"output": {…}}` runner events), secret param values masked; {} when none or after a teardown',
    ),
    drift: DriftSchema.nullable().describe(
      'a ready deployment whose check says it no longer matches; null otherwise',
    ),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Deployment' });

export const WaitingGateSchema = z
  .object({
    gate: z.enum(GATE_NAMES),
    detail: JsonObject.describe('what the gate waits for, e.g. {key, position} of a concurrency queue'),
    since: z.string(),
  })
  .meta({ id: 'WaitingGate' });

export const AttemptSchema = z
  .object({
    id: z.string().describe('att_…'),
    deployment_id: z.string(),
    number: z.number().int(),
    kind: z.enum(['deploy', 'teardown']),
    state: z.enum(ATTEMPT_STATES),
    reason: z.enum(ATTEMPT_REASONS).nullable(),
    rc: z.number().int().nullable(),
    params: JsonObject,
    force: z.boolean(),
    requested_by: z.string(),
    queued_at: z.string(),
    started_at: z.string().nullable(),
    ended_at: z.string().nullable(),
    cancel_requested_at: z.string().nullable(),
    recovered: z.boolean(),
    owner: z.string().nullable(),
    detail: z
      .string()
      .nullable()
      .describe('why the attempt ended when no exit code says it (runner_error), e.g. a missing program'),
    rollback_of: z
      .number()
      .int()
      .nullable()
      .describe('for a rollback: the number of the succeeded deploy attempt whose params it runs'),
    outputs: JsonObject.describe(
      'what its plan published so far, merged (later keys win), secret param values masked; at most 64 KiB of JSON',
    ),
    waiting: z
      .array(WaitingGateSchema)
      .describe(
        'the gates holding this queued attempt (a concurrency limit, a freeze, an approval); empty when none holds it',
      ),
  })
  .meta({ id: 'Attempt' });

export const PhaseSchema = z
  .object({
    phase: z.string(),
    started_at: z.string(),
    ended_at: z.string().nullable().describe('null while the phase is open (its attempt still runs)'),
    duration_ms: z.number().int().nullable(),
  })
  .meta({ id: 'Phase' });

export const EventSchema = z
  .object({
    seq: z.number().int(),
    type: z.enum(EVENT_TYPES),
    at: z.string(),
    deployment_id: z.string().nullable(),
    attempt_id: z.string().nullable(),
    stack_id: z
      .string()
      .optional()
      .describe("the stack (stk_…) of a unit's event or of a stack's own; absent otherwise"),
    data: JsonObject,
  })
  .meta({ id: 'Event' });

export const TransitionSchema = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    from: z.enum(DEPLOYMENT_STATES).nullable(),
    to: z.enum(DEPLOYMENT_STATES),
    trigger: z.string(),
    reason: z.string().nullable(),
    actor: z.string(),
    attempt_id: z.string().nullable(),
  })
  .meta({ id: 'Transition' });

const UnitSpecSchema = z
  .object({
    key: z.string().describe('^[a-z0-9][a-z0-9-]{0,19}$'),
    plan: z.string(),
    params: JsonObject.describe('writeOnly params are masked'),
    count: z.number().int().describe('1-100; more than 1 names the units <stack>-<key>-<i>'),
    after: z.array(z.string()).describe('keys this unit comes after'),
  })
  .meta({ id: 'UnitSpec' });

export const StackSpecSchema = z
  .object({
    name: z.string(),
    on_failure: z.enum(['stop', 'continue']),
    labels: z.record(z.string(), z.string()),
    units: z.array(UnitSpecSchema),
  })
  .meta({ id: 'StackSpec' });

export const StackSchema = z
  .object({
    id: z.string().describe('stk_…'),
    name: z.string(),
    spec: StackSpecSchema,
    labels: z.record(z.string(), z.string()),
    state: z.enum(STACK_STATES),
    version: z
      .number()
      .int()
      .describe('Incremented by every state change and spec update; the ETag is "<version>"'),
    units: z
      .array(
        z.object({
          key: z.string(),
          index: z.number().int().nullable().describe('1…count for a counted unit; null for a single one'),
          deployment: z.string().describe("the unit deployment's name"),
          deployment_id: z.string(),
          state: z.enum(DEPLOYMENT_STATES),
          current_attempt: AttemptSummarySchema.nullable(),
          outputs: JsonObject,
          drift: DriftSchema.nullable().describe(
            "the unit deployment's drift, as on the deployment: a ready unit its check found no longer matching; null otherwise",
          ),
          depth: z
            .number()
            .int()
            .describe('0 for a unit with no after; else one more than the deepest it comes after'),
          after: z.array(z.string()),
        }),
      )
      .describe('in dependency order: by depth, then spec order, then index'),
    active_run: z.object({ id: z.string(), kind: z.string(), state: z.string() }).nullable(),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .meta({ id: 'Stack' });

export const PlanSchema = z
  .object({
    name: z.string(),
    description: z.string(),
    params_schema: JsonObject.describe('JSON Schema of the params'),
    has_check: z.boolean(),
  })
  .meta({ id: 'Plan' });

export const InstanceSchema = z
  .object({
    id: z.string(),
    host: z.string(),
    port: z.number().int().nullable(),
    role: z.string(),
    data_dir: z.string(),
    started_at: z.string(),
    last_seen_at: z.string(),
    alive: z.boolean(),
  })
  .meta({ id: 'Instance' });

export const ReadinessSchema = z
  .object({ ready: z.boolean(), checks: z.record(z.string(), z.boolean()) })
  .meta({ id: 'Readiness' });

export const HealthSchema = z.object({ status: z.literal('ok'), version: z.string(), instance: z.string() });

export const CheckAcceptedSchema = z.object({ deployment_id: z.string(), status: z.literal('accepted') });

export const page = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), next_cursor: z.string().nullable() });

// ---- request pieces ----------------------------------------------------------------------------

/**
 * A decimal integer in a query string: digits only (no sign, exponent, hex or blanks). A preprocess
 * rather than a string pipe, so that the OpenAPI document types the parameter as an integer.
 */
export const queryInt = (min: number, max: number) =>
  z.preprocess((v, ctx) => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && /^[0-9]{1,15}$/.test(v)) return Number(v);
    ctx.addIssue({ code: 'custom', message: 'must be a decimal integer', input: v });
    return z.NEVER;
  }, z.number().int().min(min).max(max));

/** `true` or `false` in a query string, documented as a boolean. */
export const queryBool = z.preprocess((v, ctx) => {
  if (v === 'true' || v === true) return true;
  if (v === 'false' || v === false) return false;
  ctx.addIssue({ code: 'custom', message: 'must be true or false', input: v });
  return z.NEVER;
}, z.boolean());

export const RefParams = z.object({ ref: z.string().min(1).describe('deployment id (dep_…) or name') });
export const AttemptIdParams = z.object({ id: z.string().min(1).describe('attempt id (att_…)') });

/** Responses that are problem+json, documented per route. */
export function problems(...statuses: number[]): Record<number, { description: string; content: object }> {
  const out: Record<number, { description: string; content: object }> = {};
  for (const s of statuses) {
    out[s] = {
      description: PROBLEM_DESCRIPTIONS[s] ?? 'Problem',
      content: { 'application/problem+json': { schema: ProblemSchema } },
    };
  }
  return out;
}

const PROBLEM_DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (VALIDATION) or TEARDOWN_CONFIRM_MISMATCH',
  401: 'AUTH_REQUIRED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND / PLAN_NOT_FOUND',
  409: 'Refused in the current state',
  412: 'VERSION_MISMATCH (If-Match is stale)',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'Unsupported content type (VALIDATION)',
  422: 'VALIDATION: well-formed but invalid input, with field errors',
  503: 'STORE_UNAVAILABLE',
};

/** Problems every authenticated route can answer with. */
export const COMMON_READ_PROBLEMS = [400, 401, 403, 422, 503] as const;
export const COMMON_WRITE_PROBLEMS = [400, 401, 403, 412, 413, 415, 422, 503] as const;
