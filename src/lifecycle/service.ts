// The lifecycle service: what the API calls. Each write reads, asks the domain module, and writes in one
// transaction; a refusal throws LifelineError before anything is written.
import fs from 'node:fs';
import path from 'node:path';
import type { Transaction } from 'kysely';
import type { PlanConfig } from '../config/types.ts';
import { LifelineError } from '../domain/errors.ts';
import {
  decideCancel,
  decideCheck,
  decideCreate,
  decideDelete,
  decideDeploy,
  decideResolve,
  decideTeardown,
  type Decision,
} from '../domain/transitions.ts';
import type {
  Actor,
  Attempt,
  AttemptKind,
  AttemptState,
  Deployment,
  DeploymentState,
  InstanceInfo,
  LifelineEvent,
  Page,
  Transition,
} from '../domain/types.ts';
import { DEPLOYMENT_STATES } from '../domain/types.ts';
import { maskParams } from '../runner/redact.ts';
import {
  selectAttemptById,
  selectAttemptPage,
  selectAttemptsByIds,
  selectLastAttemptNumber,
  setCancelRequested,
} from '../store/attempts.ts';
import {
  markDeploymentDeleted,
  selectDeploymentById,
  selectDeploymentByRef,
  selectDeploymentPage,
} from '../store/deployments.ts';
import { insertEvents, selectDeploymentTransitions, selectEvents } from '../store/events.ts';
import {
  deleteIdempotencyKey,
  insertIdempotencyKey,
  selectIdempotencyKey,
  updateIdempotencyResponse,
} from '../store/idempotency.ts';
import { selectInstances } from '../store/instances.ts';
import { toAttempt, toDeployment, toSummary } from '../store/rows.ts';
import type { AttemptsTable, Database, DeploymentsTable } from '../store/schema.ts';
import { applyTransition } from '../store/transition.ts';
import type {
  CheckAccepted,
  EventQuery,
  IdempotentResponse,
  LifelineApi,
  PlanInfo,
  WriteOptions,
} from './api.ts';
import { writeEnd } from './attempt-writes.ts';
import { runCheck } from './check.ts';
import { planOf, type Ctx } from './context.ts';
import { newAttemptId, newDeploymentId, nowIso } from './ids.ts';
import { transact } from './tx.ts';
import type { Watcher } from './watcher.ts';
import { readLog } from './logs.ts';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const LABEL_KEY = /^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,62})$/;
const MAX_LABELS = 64;
const MAX_LABEL_VALUE = 256;
const MAX_PAGE = 500;
const MAX_EVENTS_PAGE = 1000;
const STALE_CLAIM_MS = 5 * 60_000;

type Trx = Transaction<Database>;

function fail(decision: Decision): asserts decision is Extract<Decision, { ok: true }> {
  if (!decision.ok) throw new LifelineError(decision.refusal.code, decision.refusal.detail);
}

function isAdmin(actor: Actor) {
  return { isAdmin: actor.role === 'admin' };
}

function checkVersion(dep: DeploymentsTable, w?: WriteOptions) {
  if (w?.ifVersion !== undefined && Number(dep.version) !== w.ifVersion) {
    throw new LifelineError(
      'VERSION_MISMATCH',
      `deployment is at version ${dep.version}, not ${w.ifVersion}`,
    );
  }
}

function validation(field: string, reason: string): LifelineError {
  return new LifelineError('VALIDATION', `${field}: ${reason}`, [{ field, reason }]);
}

function asParams(value: unknown, field: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw validation(field, 'must be an object');
  return value as Record<string, unknown>;
}

function checkParams(plan: PlanConfig, params: Record<string, unknown>): void {
  const errors = plan.validateParams(params);
  if (errors.length > 0) {
    throw new LifelineError(
      'VALIDATION',
      `params do not match the schema of plan ${plan.name}: ${errors.map((e) => `${e.field} ${e.reason}`).join('; ')}`,
      errors,
    );
  }
}

function checkLabels(labels: unknown): Record<string, string> {
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

function checkLimit(limit: number | undefined, max: number, dflt: number): number {
  if (limit === undefined) return dflt;
  if (!Number.isInteger(limit) || limit < 1 || limit > max)
    throw validation('limit', `must be an integer from 1 to ${max}`);
  return limit;
}

export class LifecycleService implements LifelineApi {
  constructor(
    protected readonly ctx: Ctx,
    protected readonly watcher: Watcher,
  ) {}

  get instanceId(): string {
    return this.ctx.instanceId;
  }

  listPlans(): PlanInfo[] {
    return Object.values(this.ctx.config.plans).map((p) => ({
      name: p.name,
      description: p.description,
      params_schema: p.paramsSchema,
      has_check: p.check !== null,
    }));
  }

  // ---- reads ------------------------------------------------------------------------------------

  private async present(db: Trx | Ctx['store']['db'], rows: DeploymentsTable[]): Promise<Deployment[]> {
    const currentIds = rows.map((r) => r.current_attempt_id).filter((x): x is string => x !== null);
    const attempts = new Map((await selectAttemptsByIds(db, currentIds)).map((a) => [a.id, a]));
    return rows.map((r) => {
      const cur = r.current_attempt_id ? attempts.get(r.current_attempt_id) : undefined;
      const dep = toDeployment(r, cur ? toSummary(cur) : null);
      return { ...dep, params: this.mask(r.plan, dep.params) };
    });
  }

  private mask(planName: string, params: Record<string, unknown>): Record<string, unknown> {
    const plan = planOf(this.ctx, planName);
    return plan ? maskParams(params, plan.secretParams) : params;
  }

  private presentAttempt(row: AttemptsTable, planName: string): Attempt {
    const a = toAttempt(row);
    return { ...a, params: this.mask(planName, a.params) };
  }

  private async byRef(db: Trx | Ctx['store']['db'], ref: string): Promise<DeploymentsTable> {
    const row = await selectDeploymentByRef(db, ref);
    if (!row) throw new LifelineError('NOT_FOUND', `deployment ${ref} not found`);
    return row;
  }

  async getDeployment(ref: string): Promise<Deployment> {
    const row = await this.byRef(this.ctx.store.db, ref);
    return (await this.present(this.ctx.store.db, [row]))[0];
  }

  async listDeployments(query: {
    state?: DeploymentState;
    plan?: string;
    labels?: Record<string, string>;
    limit?: number;
    cursor?: string;
  }): Promise<Page<Deployment>> {
    const limit = checkLimit(query.limit, MAX_PAGE, 50);
    if (query.state !== undefined && !DEPLOYMENT_STATES.includes(query.state)) {
      throw validation('state', `must be one of ${DEPLOYMENT_STATES.join(', ')}`);
    }
    if (query.cursor !== undefined && !/^dep_[0-9A-Z]{26}$/.test(query.cursor))
      throw validation('cursor', 'is not a cursor');
    const rows = await selectDeploymentPage(this.ctx.store.db, {
      state: query.state,
      plan: query.plan,
      labels: query.labels,
      limit: limit + 1,
      before: query.cursor,
    });
    const page = rows.slice(0, limit);
    return {
      items: await this.present(this.ctx.store.db, page),
      next_cursor: rows.length > limit ? page[page.length - 1].id : null,
    };
  }

  async listAttempts(ref: string, query: { limit?: number; cursor?: string }): Promise<Page<Attempt>> {
    const limit = checkLimit(query.limit, MAX_PAGE, 50);
    let before: number | undefined;
    if (query.cursor !== undefined) {
      before = Number(query.cursor);
      if (!/^[1-9][0-9]{0,8}$/.test(query.cursor)) throw validation('cursor', 'is not a cursor');
    }
    const dep = await this.byRef(this.ctx.store.db, ref);
    const rows = await selectAttemptPage(this.ctx.store.db, dep.id, limit + 1, before);
    const page = rows.slice(0, limit);
    return {
      items: page.map((r) => this.presentAttempt(r, dep.plan)),
      next_cursor: rows.length > limit ? String(page[page.length - 1].number) : null,
    };
  }

  async getAttempt(id: string): Promise<Attempt> {
    const row = await selectAttemptById(this.ctx.store.db, id);
    if (!row) throw new LifelineError('NOT_FOUND', `attempt ${id} not found`);
    const dep = await selectDeploymentById(this.ctx.store.db, row.deployment_id);
    return this.presentAttempt(row, dep?.plan ?? '');
  }

  async readAttemptLog(
    id: string,
    offset = 0,
    opts: { limit?: number; tail?: number } = {},
  ): Promise<{ text: string; next_offset: number }> {
    if (!Number.isInteger(offset) || offset < 0) throw validation('offset', 'must be a non-negative integer');
    const row = await selectAttemptById(this.ctx.store.db, id);
    if (!row) throw new LifelineError('NOT_FOUND', `attempt ${id} not found`);
    return readLog(this.ctx, row, { offset, ...opts });
  }

  async listTransitions(ref: string): Promise<{ items: Transition[] }> {
    const dep = await this.byRef(this.ctx.store.db, ref);
    const events = await selectDeploymentTransitions(this.ctx.store.db, dep.id);
    return {
      items: events.map((e) => ({
        seq: e.seq,
        at: e.at,
        from: e.data.from as DeploymentState | null,
        to: e.data.to as DeploymentState,
        trigger: e.data.trigger as string,
        reason: (e.data.reason as string | null) ?? null,
        actor: e.data.actor as string,
        attempt_id: e.attempt_id,
      })),
    };
  }

  /** Resolves a deployment filter to its id; deleted deployments stay readable by id. */
  async deploymentIdFor(ref: string): Promise<string> {
    const live = await selectDeploymentByRef(this.ctx.store.db, ref);
    if (live) return live.id;
    const gone = await selectDeploymentById(this.ctx.store.db, ref);
    if (gone) return gone.id;
    throw new LifelineError('NOT_FOUND', `deployment ${ref} not found`);
  }

  async listEvents(query: EventQuery): Promise<{ items: LifelineEvent[]; next_after: number }> {
    const after = query.after ?? 0;
    if (!Number.isInteger(after) || after < 0) throw validation('after', 'must be a non-negative integer');
    const limit = checkLimit(query.limit, MAX_EVENTS_PAGE, 100);
    const deploymentId = query.deployment ? await this.deploymentIdFor(query.deployment) : undefined;
    const items = await selectEvents(this.ctx.store.db, { after, limit, deploymentId, types: query.types });
    return { items, next_after: items.length > 0 ? items[items.length - 1].seq : after };
  }

  onEvents(listener: (lastSeq: number) => void): () => void {
    return this.ctx.bus.on(listener);
  }

  async listInstances(): Promise<InstanceInfo[]> {
    const rows = await selectInstances(this.ctx.store.db);
    const horizon = Date.now() - this.ctx.config.leaseTtlMs;
    return rows.map((r) => ({
      id: r.id,
      host: r.host,
      port: r.port === null ? null : Number(r.port),
      role: r.role,
      data_dir: r.data_dir,
      started_at: r.started_at,
      last_seen_at: r.last_seen_at,
      alive: Date.parse(r.last_seen_at) >= horizon,
    }));
  }

  async readiness(): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
    const checks: Record<string, boolean> = { db: false, data_dir: false };
    try {
      await this.ctx.store.db.selectFrom('counters').select('value').limit(1).execute();
      checks.db = true;
    } catch {
      checks.db = false;
    }
    try {
      fs.accessSync(this.ctx.config.dataDir, fs.constants.W_OK);
      checks.data_dir = true;
    } catch {
      checks.data_dir = false;
    }
    return { ready: Object.values(checks).every(Boolean), checks };
  }

  // ---- writes -----------------------------------------------------------------------------------

  async createDeployment(
    input: { name: string; plan: string; params?: unknown; labels?: Record<string, string> },
    actor: Actor,
  ): Promise<Deployment> {
    if (typeof input.name !== 'string' || !NAME.test(input.name)) {
      throw validation('name', 'must match ^[a-z0-9][a-z0-9-]{0,62}$');
    }
    const plan = typeof input.plan === 'string' ? planOf(this.ctx, input.plan) : undefined;
    if (!plan) throw new LifelineError('PLAN_NOT_FOUND', `plan ${String(input.plan)} is not configured`);
    const params = asParams(input.params, 'params');
    checkParams(plan, params);
    const labels = checkLabels(input.labels);
    const decision = decideCreate();
    fail(decision);
    return transact(this.ctx.store, this.ctx.bus, async (trx) => {
      if (await selectDeploymentByRef(trx, input.name)) {
        throw new LifelineError('DEPLOYMENT_EXISTS', `deployment ${input.name} already exists`);
      }
      const at = nowIso();
      const row: DeploymentsTable = {
        id: newDeploymentId(),
        name: input.name,
        plan: plan.name,
        params: JSON.stringify(params),
        labels: JSON.stringify(labels),
        state: decision.writes.deployment!.to,
        version: 1,
        state_changed_at: at,
        current_attempt_id: null,
        created_at: at,
        updated_at: at,
        deleted_at: null,
      };
      const events = await applyTransition(trx, {
        at,
        actor: actor.name,
        deployment: {
          id: row.id,
          change: decision.writes.deployment,
          insert: row,
        },
        eventsBefore: [
          {
            type: 'deployment_created',
            deployment_id: row.id,
            attempt_id: null,
            data: { name: row.name, plan: plan.name, params: maskParams(params, plan.secretParams), labels },
          },
        ],
      });
      return { result: (await this.present(trx, [row]))[0], events };
    });
  }

  async deleteDeployment(
    ref: string,
    opts: { force?: boolean },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<void> {
    await transact(this.ctx.store, this.ctx.bus, async (trx) => {
      const dep = await this.byRef(trx, ref);
      checkVersion(dep, w);
      fail(decideDelete(dep.state as DeploymentState, opts.force === true, isAdmin(actor)));
      const at = nowIso();
      if (!(await markDeploymentDeleted(trx, dep.id, Number(dep.version), at))) {
        throw new LifelineError('INVALID_TRANSITION', 'the deployment changed while it was being deleted');
      }
      const events = await insertEvents(
        trx,
        [
          {
            type: 'deployment_deleted',
            deployment_id: dep.id,
            attempt_id: null,
            data: { name: dep.name, actor: actor.name },
          },
        ],
        at,
      );
      return { result: undefined, events };
    });
  }

  async startDeploy(
    ref: string,
    input: { params?: unknown; force?: boolean },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Attempt> {
    const override = asParams(input.params, 'params');
    return this.startAttempt(ref, 'deploy', actor, w, input.force === true, (dep, plan) => {
      const params = { ...JSON.parse(dep.params), ...override };
      checkParams(plan, params);
      return {
        decision: decideDeploy(dep.state as DeploymentState, input.force === true, isAdmin(actor)),
        params,
      };
    });
  }

  async teardown(
    ref: string,
    input: { confirm?: string; force?: boolean },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Attempt> {
    if (input.confirm !== undefined && typeof input.confirm !== 'string') {
      throw validation('confirm', 'must repeat the deployment name');
    }
    return this.startAttempt(ref, 'teardown', actor, w, input.force === true, (dep) => ({
      decision: decideTeardown(
        dep.state as DeploymentState,
        { name: dep.name, confirm: input.confirm ?? '', force: input.force === true },
        isAdmin(actor),
      ),
      params: JSON.parse(dep.params),
    }));
  }

  private async startAttempt(
    ref: string,
    kind: AttemptKind,
    actor: Actor,
    w: WriteOptions | undefined,
    force: boolean,
    decide: (
      dep: DeploymentsTable,
      plan: PlanConfig,
    ) => { decision: Decision; params: Record<string, unknown> },
  ): Promise<Attempt> {
    const id = newAttemptId();
    // Registered before the commit: a cancel that races the launch must ask, not cancel outright.
    this.watcher.expect(id);
    try {
      const { row, dep, plan } = await transact(this.ctx.store, this.ctx.bus, async (trx) => {
        const dep = await this.byRef(trx, ref);
        checkVersion(dep, w);
        const plan = planOf(this.ctx, dep.plan);
        if (!plan) throw new LifelineError('PLAN_NOT_FOUND', `plan ${dep.plan} is no longer configured`);
        const { decision, params } = decide(dep, plan);
        fail(decision);
        const at = nowIso();
        const row: AttemptsTable = {
          id,
          deployment_id: dep.id,
          number: (await selectLastAttemptNumber(trx, dep.id)) + 1,
          kind,
          state: decision.writes.attempt!.to,
          reason: null,
          rc: null,
          params: JSON.stringify(params),
          force: force ? 1 : 0,
          requested_by: actor.name,
          queued_at: at,
          started_at: null,
          ended_at: null,
          cancel_requested_at: null,
          timed_out_at: null,
          recovered: 0,
          owner: this.ctx.instanceId,
          prev_state: dep.state,
          version: 1,
          pid: null,
          process_start: null,
          boot_id: null,
          run_dir: path.join(this.ctx.config.dataDir, 'attempts', id),
          timeout_ms: plan.timeoutMs,
          cancel_grace_ms: plan.cancelGraceMs,
          stdout_offset: 0,
          stderr_offset: 0,
          events_offset: 0,
        };
        const events = await applyTransition(trx, {
          at,
          actor: actor.name,
          deployment: {
            id: dep.id,
            expectState: dep.state,
            expectVersion: Number(dep.version),
            change: decision.writes.deployment,
            set: { current_attempt_id: id, ...(kind === 'deploy' ? { params: row.params } : {}) },
          },
          attempt: { id, change: decision.writes.attempt!, insert: row },
        });
        return { result: { row, dep, plan }, events };
      });
      await this.watcher.launch({ attempt: row, deploymentName: dep.name, plan });
      return this.getAttempt(id);
    } finally {
      this.watcher.forget(id);
    }
  }

  async cancel(ref: string, actor: Actor, w?: WriteOptions): Promise<Attempt> {
    const id = await transact(this.ctx.store, this.ctx.bus, async (trx) => {
      const dep = await this.byRef(trx, ref);
      checkVersion(dep, w);
      const att = dep.current_attempt_id ? await selectAttemptById(trx, dep.current_attempt_id) : undefined;
      const started = att ? att.state === 'running' || (await this.someoneStarts(trx, att)) : false;
      const d = decideCancel(
        att ? { state: att.state as AttemptState, cancelRequested: att.cancel_requested_at !== null } : null,
        started,
      );
      if (!d.ok) throw new LifelineError(d.refusal.code, d.refusal.detail);
      const at = nowIso();
      if (d.action === 'cancel_now') {
        const end = await writeEnd(
          trx,
          att!.id,
          { kind: 'cancelled_before_start' },
          { rc: null, recovered: false, actor: actor.name, cancelRequestedAt: at },
        );
        if (!end.ok) throw new LifelineError(end.refusal.code, end.refusal.detail);
        return { result: att!.id, events: end.events };
      }
      if (d.action === 'request') await setCancelRequested(trx, att!.id, at);
      return { result: att!.id, events: [] };
    });
    this.watcher.wake(id);
    return this.getAttempt(id);
  }

  /** Is some runner about to start (or already starting) this queued attempt? */
  private async someoneStarts(trx: Trx, att: AttemptsTable): Promise<boolean> {
    if (att.state !== 'queued') return false;
    if (att.owner === this.ctx.instanceId) return this.watcher.isWatched(att.id);
    const owner = (await selectInstances(trx)).find((i) => i.id === att.owner);
    return owner !== undefined && Date.parse(owner.last_seen_at) >= Date.now() - this.ctx.config.leaseTtlMs;
  }

  async resolve(
    ref: string,
    input: { state: 'ready' | 'failed' | 'torn_down'; reason: string },
    actor: Actor,
    w?: WriteOptions,
  ): Promise<Deployment> {
    if (typeof input.reason !== 'string') throw validation('reason', 'is required');
    if (input.reason.length > 1000) throw validation('reason', 'at most 1000 characters');
    return transact(this.ctx.store, this.ctx.bus, async (trx) => {
      const dep = await this.byRef(trx, ref);
      checkVersion(dep, w);
      const decision = decideResolve(dep.state as DeploymentState, input.state, input.reason, isAdmin(actor));
      fail(decision);
      const events = await applyTransition(trx, {
        at: nowIso(),
        actor: actor.name,
        deployment: {
          id: dep.id,
          expectState: dep.state,
          expectVersion: Number(dep.version),
          change: decision.writes.deployment,
        },
      });
      const fresh = (await selectDeploymentById(trx, dep.id))!;
      return { result: (await this.present(trx, [fresh]))[0], events };
    });
  }

  private checking = new Set<string>();

  async check(ref: string, actor: Actor, w?: WriteOptions): Promise<CheckAccepted> {
    const dep = await this.byRef(this.ctx.store.db, ref);
    checkVersion(dep, w);
    const plan = planOf(this.ctx, dep.plan);
    fail(decideCheck(dep.state as DeploymentState, Boolean(plan?.check)));
    if (this.checking.has(dep.id))
      throw new LifelineError('INVALID_TRANSITION', 'a check is already running');
    this.checking.add(dep.id);
    runCheck(this.ctx, dep, plan!, actor)
      .catch((err) =>
        this.ctx.log.error({ deployment: dep.id, err: (err as Error).message }, 'check failed to run'),
      )
      .finally(() => this.checking.delete(dep.id));
    return { deployment_id: dep.id, status: 'accepted' };
  }

  // ---- idempotency keys -------------------------------------------------------------------------

  async idempotencyLookup(scope: string, key: string) {
    const row = await selectIdempotencyKey(this.ctx.store.db, scope, key);
    if (!row) return null;
    return {
      request_hash: row.request_hash,
      response: row.response === null ? null : (JSON.parse(row.response) as IdempotentResponse),
    };
  }

  async idempotencyClaim(scope: string, key: string, requestHash: string): Promise<boolean> {
    const row = { scope, key, request_hash: requestHash, created_at: nowIso() };
    if (await insertIdempotencyKey(this.ctx.store.db, row)) return true;
    // A claim whose holder died before saving a response would block the key forever: after a while
    // with no response it is released (the write it guarded either committed or never happened).
    const held = await selectIdempotencyKey(this.ctx.store.db, scope, key);
    if (held && held.response === null && Date.parse(held.created_at) < Date.now() - STALE_CLAIM_MS) {
      await deleteIdempotencyKey(this.ctx.store.db, scope, key);
      return insertIdempotencyKey(this.ctx.store.db, row);
    }
    return false;
  }

  idempotencySave(scope: string, key: string, response: IdempotentResponse): Promise<void> {
    return updateIdempotencyResponse(this.ctx.store.db, scope, key, JSON.stringify(response));
  }

  idempotencyRelease(scope: string, key: string): Promise<void> {
    return deleteIdempotencyKey(this.ctx.store.db, scope, key);
  }
}
