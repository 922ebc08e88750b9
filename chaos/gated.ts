// The chaos run's stacks and gates (issues 19 and 20): the plans and config it adds, and the load's
// operations on them. A concurrency key of limit 1 shared by every deployment of plan `slot` (and the
// `team` units of every stack), approvals on plan `appr` given or refused by a second token, a freeze
// (plans `slot` and `appr`) created and lifted through the API, and stacks created, deployed, torn down
// and cancelled. Each operation picks its target from what the API lists, so it does something.
import { createHash, randomBytes } from 'node:crypto';
import type { Random } from './random.ts';

export const SLOT_KEY = 'chaos-slot';
export const SLOT_LIMIT = 1;
const FREEZE = 'chaos-freeze';
const MAX_STACKS = 4;

export interface Tokens {
  /** Every request of the load and the run (admin: force, resolve and freezes need it). */
  admin: string;
  /** The second actor: approves and rejects what the admin token asked for. */
  approver: string;
}

export function newTokens(): Tokens {
  return { admin: randomBytes(16).toString('hex'), approver: randomBytes(16).toString('hex') };
}

/** `auth:` of the config (approvals need tokens): hashes only, the file holds no secret. */
export function authConfig(t: Tokens) {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  return {
    tokens: [
      { name: 'chaos', role: 'admin', token_sha256: sha(t.admin) },
      { name: 'approver', role: 'operator', token_sha256: sha(t.approver) },
    ],
  };
}

/** The gated plans: `work` with a shared limit of 1, and `work` needing an approval (expiring). */
export function gatedPlans(work: Record<string, unknown>) {
  return {
    slot: {
      ...work,
      description: 'chaos: work, one at a time',
      concurrency: { key: SLOT_KEY, limit: SLOT_LIMIT },
    },
    appr: {
      ...work,
      description: 'chaos: work, approved by another token',
      approval: { deploy: true, expires: '15s' },
    },
  };
}

export type Send = (
  token: 'admin' | 'approver',
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: unknown }>;

type Items<T> = { items?: T[] } | null;

/** A stack of three stages: net, two team units (behind the shared slot), fin reading their outputs. */
function stackSpec(name: string, rng: Random, secret: string) {
  const p = (extra: Record<string, unknown> = {}) => ({
    sleep: Math.round(rng.between(0.1, 1) * 10) / 10,
    lines: rng.int(0, 5),
    token: secret,
    ...extra,
  });
  return {
    name,
    on_failure: rng.pick(['stop', 'continue']),
    labels: { chaos: 'stack' },
    units: [
      { key: 'net', plan: 'work', params: p() },
      { key: 'team', plan: 'slot', count: 2, params: p(), after: ['net'] },
      { key: 'fin', plan: 'work', params: p({ fail: rng.chance(0.2) }), after: ['team'] },
    ],
  };
}

export class GatedOps {
  private stacks: string[] = [];
  private made = 0;

  constructor(
    private prefix: string,
    private secret: string,
  ) {}

  get stackNames(): readonly string[] {
    return this.stacks;
  }

  /** Creates a stack (up to a few), else deploys, tears down, cancels or reads one. */
  async stack(send: Send, rng: Random): Promise<void> {
    if (this.stacks.length < MAX_STACKS && (this.stacks.length === 0 || rng.chance(0.15))) {
      const name = `${this.prefix}-s${this.made++}`;
      const r = await send('admin', 'POST', '/v1/stacks', stackSpec(name, rng, this.secret));
      if (r.status === 201 || r.status === 409) this.stacks.push(name);
      return;
    }
    const name = rng.pick(this.stacks);
    const what = rng.weighted({ deploy: 5, teardown: 2, cancel: 1, read: 2 });
    if (what === 'deploy') await send('admin', 'POST', `/v1/stacks/${name}/deploy`, {});
    else if (what === 'teardown')
      await send('admin', 'POST', `/v1/stacks/${name}/teardown`, { confirm: name });
    else if (what === 'cancel') await send('admin', 'POST', `/v1/stacks/${name}/cancel`);
    else {
      const runs = await send('admin', 'GET', `/v1/stacks/${name}/runs?limit=1`);
      const id = (runs.body as Items<{ id: string }>)?.items?.[0]?.id;
      if (id) await send('admin', 'GET', `/v1/runs/${id}`);
      else await send('admin', 'GET', `/v1/stacks/${name}`);
    }
  }

  /** Makes the freeze when there is none in force, else lifts it (a freeze not lifted ends by itself). */
  async freeze(send: Send, rng: Random): Promise<void> {
    const list = await send('admin', 'GET', '/v1/freezes');
    const mine = (list.body as Items<{ name: string; in_force: boolean }>)?.items?.find(
      (f) => f.name === FREEZE,
    );
    if (mine?.in_force) {
      await send('admin', 'DELETE', `/v1/freezes/${FREEZE}`);
      return;
    }
    await send('admin', 'POST', '/v1/freezes', {
      name: FREEZE,
      match: { plans: ['slot', 'appr'] },
      until: new Date(Date.now() + rng.int(4_000, 12_000)).toISOString(),
      reason: 'chaos: a freeze in the middle of the run',
      when: 'queue',
    });
  }

  /** The second actor approves (mostly) or rejects an attempt waiting for approval; sometimes the requester tries. */
  async approve(send: Send, rng: Random): Promise<void> {
    const found = await send('admin', 'GET', '/v1/attempts?waiting=true&gate=approval');
    const items = (found.body as Items<{ id: string }>)?.items ?? [];
    if (items.length === 0) return;
    const id = rng.pick(items).id;
    // The requester approving its own attempt must be refused (403) and write nothing.
    if (rng.chance(0.1)) {
      await send('admin', 'POST', `/v1/attempts/${id}/approve`, { reason: 'chaos: self-approval' });
      return;
    }
    const verb = rng.chance(0.8) ? 'approve' : 'reject';
    await send('approver', 'POST', `/v1/attempts/${id}/${verb}`, { reason: `chaos: ${verb}` });
  }
}
