import type { ErrorCode } from './types.ts';

const STATUS: Record<ErrorCode, number> = {
  NOT_FOUND: 404,
  VALIDATION: 422,
  DEPLOYMENT_EXISTS: 409,
  PLAN_NOT_FOUND: 404,
  ATTEMPT_IN_PROGRESS: 409,
  DEPLOYMENT_UNKNOWN_STATE: 409,
  INVALID_TRANSITION: 409,
  ALREADY_TORN_DOWN: 409,
  TEARDOWN_CONFIRM_MISMATCH: 400,
  NO_INFLIGHT_ATTEMPT: 409,
  ATTEMPT_TERMINAL: 409,
  VERSION_MISMATCH: 412,
  AUTH_REQUIRED: 401,
  FORBIDDEN: 403,
  STORE_UNAVAILABLE: 503,
  PAYLOAD_TOO_LARGE: 413,
  NO_ROLLBACK_TARGET: 409,
  STACK_EXISTS: 409,
  UNIT_NOT_TORN_DOWN: 409,
  STACK_RUN_IN_PROGRESS: 409,
  STACK_UNKNOWN_STATE: 409,
  NO_ACTIVE_RUN: 409,
  CONCURRENCY_LIMIT: 409,
  FROZEN: 409,
  FREEZE_EXISTS: 409,
  PLAN_STALE: 409,
  PRUNE_LIMIT: 409,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}

export interface FieldError {
  field: string;
  reason: string;
}

/** A refusal with a stable SPEC code. Every layer throws this; HTTP maps it to problem+json. */
export class LifelineError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors?: FieldError[];
  constructor(code: ErrorCode, detail: string, errors?: FieldError[], status?: number) {
    super(detail);
    this.name = 'LifelineError';
    this.code = code;
    this.status = status ?? STATUS[code];
    if (errors) this.errors = errors;
  }
}
