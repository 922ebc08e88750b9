// Input checks made before anything is read or written: names, params, labels, paging, reasons.
import type { PlanConfig } from '../config/types.ts';
import { LifelineError } from '../domain/errors.ts';
import { DEPLOYMENT_NAME, DEPLOYMENT_STATES, LABEL_KEY, type DeploymentState } from '../domain/types.ts';

const MAX_LABELS = 64;
const MAX_LABEL_VALUE = 256;
const MAX_REASON = 1000;
export const MAX_PAGE = 500;
export const MAX_EVENTS_PAGE = 1000;

export function validation(field: string, reason: string): LifelineError {
  return new LifelineError('VALIDATION', `${field}: ${reason}`, [{ field, reason }]);
}

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !DEPLOYMENT_NAME.test(name)) {
    throw validation('name', `must match ${DEPLOYMENT_NAME.source}`);
  }
  return name;
}

export function asParams(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw validation(field, 'must be an object');
  return value as Record<string, unknown>;
}

export function checkParams(plan: PlanConfig, params: Record<string, unknown>): void {
  const errors = plan.validateParams(params);
  if (errors.length > 0) {
    throw new LifelineError(
      'VALIDATION',
      `params do not match the schema of plan ${plan.name}: ${errors.map((e) => `${e.field} ${e.reason}`).join('; ')}`,
      errors,
    );
  }
}

export function checkLabels(labels: unknown): Record<string, string> {
  if (labels === undefined) return {};
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels))
    throw validation('labels', 'must be an object');
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw validation('labels', `at most ${MAX_LABELS} labels`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY.test(k))
      throw validation(`labels.${k}`, 'label keys are 1-63 of [a-zA-Z0-9._/-], starting alphanumeric');
    if (typeof v !== 'string') throw validation(`labels.${k}`, 'label values are strings');
    if (v.length > MAX_LABEL_VALUE) throw validation(`labels.${k}`, `at most ${MAX_LABEL_VALUE} characters`);
  }
  return labels as Record<string, string>;
}

export function checkLimit(limit: number | undefined, max: number, dflt: number): number {
  if (limit === undefined) return dflt;
  if (!Number.isInteger(limit) || limit < 1 || limit > max)
    throw validation('limit', `must be an integer from 1 to ${max}`);
  return limit;
}

/** A byte offset or an event seq to read after. */
export function checkPosition(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0) throw validation(field, 'must be a non-negative integer');
  return value;
}

export function checkStateFilter(state: DeploymentState | undefined): void {
  if (state !== undefined && !DEPLOYMENT_STATES.includes(state)) {
    throw validation('state', `must be one of ${DEPLOYMENT_STATES.join(', ')}`);
  }
}

/** Deployments are paged by id (newest first). */
export function checkDeploymentCursor(cursor: string | undefined): void {
  if (cursor !== undefined && !/^dep_[0-9A-Z]{26}$/.test(cursor))
    throw validation('cursor', 'is not a cursor');
}

/** Attempts are paged by number (newest first). */
export function attemptCursor(cursor: string | undefined): number | undefined {
  if (cursor === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(cursor)) throw validation('cursor', 'is not a cursor');
  return Number(cursor);
}

export function checkReason(reason: unknown): void {
  if (typeof reason !== 'string') throw validation('reason', 'is required');
  if (reason.length > MAX_REASON) throw validation('reason', `at most ${MAX_REASON} characters`);
}

export function checkConfirm(confirm: unknown): void {
  if (confirm !== undefined && typeof confirm !== 'string') {
    throw validation('confirm', 'must repeat the deployment name');
  }
}
